//! PNG charts for reports: line charts (optionally log-scaled) and grouped bar charts with
//! optional error bars, drawn with `plotters` into an RGB buffer and encoded with `image`.
//!
//! Text uses DejaVu Sans, bundled as bytes (`host/assets/`, Bitstream Vera licence), so a
//! chart renders the same on every machine without system fonts.

use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// The bundled font.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// Chart size in pixels.
const WIDTH: u32 = 900;
/// Chart size in pixels.
const HEIGHT: u32 = 600;
/// Series colours, in order.
const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// Why a chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The chart holds nothing to draw, or a series is malformed.
    #[error("chart {title:?}: {reason}")]
    Data {
        /// The chart's title.
        title: String,
        /// What is wrong.
        reason: String,
    },
    /// The drawing backend failed.
    #[error("drawing chart {title:?}: {message}")]
    Draw {
        /// The chart's title.
        title: String,
        /// The backend's message.
        message: String,
    },
    /// The PNG could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The encoder's error.
        source: image::ImageError,
    },
}

/// One line of a [`LineChart`].
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// The points, drawn in the given order.
    pub points: Vec<(f64, f64)>,
}

/// A line chart with markers at every point.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LineChart {
    /// Caption above the chart.
    pub title: String,
    /// Text under the x axis.
    pub x_label: String,
    /// Text beside the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Log-scaled x axis (points with x ≤ 0 are left out).
    pub x_log: bool,
    /// Log-scaled y axis (points with y ≤ 0 are left out).
    pub y_log: bool,
    /// The x range; the data's own range when `None`.
    pub x_range: Option<(f64, f64)>,
    /// The y range; the data's own range when `None`.
    pub y_range: Option<(f64, f64)>,
}

/// One group of bars in a [`BarChart`]: a value per category.
#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    /// Legend text.
    pub label: String,
    /// One value per category.
    pub values: Vec<f64>,
    /// Half-widths of the error bars, one per category (for example a 95 % interval).
    pub errors: Option<Vec<f64>>,
}

/// A grouped bar chart: for each category, one bar per series side by side.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BarChart {
    /// Caption above the chart.
    pub title: String,
    /// Text beside the y axis.
    pub y_label: String,
    /// The categories along the x axis.
    pub categories: Vec<String>,
    /// The series; each holds one value per category.
    pub series: Vec<BarSeries>,
    /// The y range; from 0 (or the smallest value) to the largest when `None`.
    pub y_range: Option<(f64, f64)>,
}

/// Registers the bundled font once per process.
fn fonts() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font("sans-serif", FontStyle::Normal, FONT)
                .map_err(|_| "the bundled font did not load".to_string())
        })
        .clone()
}

/// Draws with `draw` on a white canvas and writes it to `path` as PNG.
fn render(
    title: &str,
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<(), PlotError> {
    let failed = |message: String| PlotError::Draw {
        title: title.to_string(),
        message,
    };
    fonts().map_err(failed)?;
    let mut buffer = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| failed(e.to_string()))?;
        draw(&root).map_err(failed)?;
        root.present().map_err(|e| failed(e.to_string()))?;
    }
    let image =
        image::RgbImage::from_raw(WIDTH, HEIGHT, buffer).ok_or_else(|| PlotError::Draw {
            title: title.to_string(),
            message: "buffer size".to_string(),
        })?;
    image.save(path).map_err(|source| PlotError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// The range of `values`, widened a little, or `fixed` when given; `None` when empty.
fn span(
    values: impl Iterator<Item = f64>,
    fixed: Option<(f64, f64)>,
    log: bool,
) -> Option<Range<f64>> {
    if let Some((lo, hi)) = fixed {
        return (lo < hi && lo.is_finite() && hi.is_finite() && (!log || lo > 0.0))
            .then_some(lo..hi);
    }
    let (lo, hi) = values
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    Some(if log {
        let (lo, hi) = if lo == hi {
            (lo / 2.0, hi * 2.0)
        } else {
            (lo, hi)
        };
        lo / 1.2..hi * 1.2
    } else {
        let pad = if lo == hi {
            lo.abs().max(1.0) * 0.05
        } else {
            (hi - lo) * 0.04
        };
        lo - pad..hi + pad
    })
}

/// Draws the series' legend in the upper right corner of `chart`.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| e.to_string())
}

impl LineChart {
    /// Draws the chart and writes it to `path` as a PNG.
    ///
    /// # Errors
    /// [`PlotError::Data`] when there is no finite point to draw (on a log axis, no
    /// positive one) or a range is empty; [`PlotError::Draw`] or [`PlotError::Write`] when
    /// drawing or writing fails.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        let data = |reason: &str| PlotError::Data {
            title: self.title.clone(),
            reason: reason.to_string(),
        };
        let keep = |&(x, y): &(f64, f64)| {
            x.is_finite() && y.is_finite() && (!self.x_log || x > 0.0) && (!self.y_log || y > 0.0)
        };
        let points = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter().copied().filter(keep))
        };
        let xs = span(points().map(|p| p.0), self.x_range, self.x_log)
            .ok_or_else(|| data("no point to draw on the x axis"))?;
        let ys = span(points().map(|p| p.1), self.y_range, self.y_log)
            .ok_or_else(|| data("no point to draw on the y axis"))?;
        render(&self.title, path, |root| match (self.x_log, self.y_log) {
            (false, false) => self.draw(root, xs, ys, &keep),
            (true, false) => self.draw(root, xs.log_scale(), ys, &keep),
            (false, true) => self.draw(root, xs, ys.log_scale(), &keep),
            (true, true) => self.draw(root, xs.log_scale(), ys.log_scale(), &keep),
        })
    }

    /// Draws on `root` in the coordinates `xs × ys`.
    fn draw<X, Y>(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, Shift>,
        xs: X,
        ys: Y,
        keep: &dyn Fn(&(f64, f64)) -> bool,
    ) -> Result<(), String>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(xs, ys)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for (series, colour) in self.series.iter().zip(PALETTE.iter().cycle()) {
            let points: Vec<(f64, f64)> =
                series.points.iter().copied().filter(|p| keep(p)).collect();
            let style = colour.stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))
                .map_err(|e| e.to_string())?
                .label(&series.label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
        legend(&mut chart)
    }
}

impl BarChart {
    /// Draws the chart and writes it to `path` as a PNG.
    ///
    /// # Errors
    /// [`PlotError::Data`] when there is no category or series, a series does not hold
    /// one value (and one error, if any) per category, or a value is not finite;
    /// [`PlotError::Draw`] or [`PlotError::Write`] when drawing or writing fails.
    pub fn write_png(&self, path: &Path) -> Result<(), PlotError> {
        let data = |reason: String| PlotError::Data {
            title: self.title.clone(),
            reason,
        };
        let categories = self.categories.len();
        if categories == 0 || self.series.is_empty() {
            return Err(data("no category or no series".to_string()));
        }
        for s in &self.series {
            let errors_fit = s.errors.as_ref().is_none_or(|e| e.len() == categories);
            if s.values.len() != categories || !errors_fit {
                return Err(data(format!(
                    "series {:?} holds {} values for {categories} categories",
                    s.label,
                    s.values.len()
                )));
            }
            let finite = s
                .values
                .iter()
                .chain(s.errors.iter().flatten())
                .all(|v| v.is_finite());
            if !finite {
                return Err(data(format!(
                    "series {:?} holds a value that is not finite",
                    s.label
                )));
            }
        }
        let tops = self.series.iter().flat_map(|s| {
            let errors = s.errors.clone().unwrap_or_else(|| vec![0.0; categories]);
            s.values
                .iter()
                .zip(errors)
                .flat_map(|(v, e)| [v + e.abs(), v - e.abs()])
                .collect::<Vec<_>>()
        });
        let ys = match self.y_range {
            Some(range) => span(std::iter::empty(), Some(range), false),
            None => span(tops.chain([0.0]), None, false),
        }
        .ok_or_else(|| data("empty y range".to_string()))?;
        render(&self.title, path, |root| self.draw(root, ys))
    }

    /// Draws on `root` with the y axis over `ys`; category k spans x ∈ [k, k + 1).
    fn draw(
        &self,
        root: &DrawingArea<BitMapBackend<'_>, Shift>,
        ys: Range<f64>,
    ) -> Result<(), String> {
        let categories = self.categories.clone();
        let count = categories.len();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 24))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..count as f64, ys)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(count * 2 + 1)
            .x_label_formatter(&|x| {
                let k = x.floor();
                let centred = (x - k - 0.5).abs() < 1e-6;
                match categories.get(k as usize) {
                    Some(name) if centred && k >= 0.0 => name.clone(),
                    _ => String::new(),
                }
            })
            .y_desc(&self.y_label)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 17))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        let width = 0.8 / self.series.len() as f64;
        for (j, (series, colour)) in self.series.iter().zip(PALETTE.iter().cycle()).enumerate() {
            let left = |k: usize| k as f64 + 0.1 + j as f64 * width;
            let bars = series.values.iter().enumerate().map(|(k, &v)| {
                Rectangle::new([(left(k), 0.0), (left(k) + width, v)], colour.filled())
            });
            chart
                .draw_series(bars)
                .map_err(|e| e.to_string())?
                .label(&series.label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled())
                });
            if let Some(errors) = &series.errors {
                let whiskers = series
                    .values
                    .iter()
                    .zip(errors)
                    .enumerate()
                    .map(|(k, (&v, &e))| {
                        let mid = left(k) + width / 2.0;
                        PathElement::new(
                            [(mid, v - e.abs()), (mid, v + e.abs())],
                            BLACK.stroke_width(2),
                        )
                    });
                chart.draw_series(whiskers).map_err(|e| e.to_string())?;
            }
        }
        legend(&mut chart)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("heist-plot-{}-{name}", std::process::id()))
    }

    /// Counts the pixels of `path` that are neither white nor grey (the series' colours).
    fn coloured_pixels(path: &Path) -> usize {
        let image = image::open(path).expect("the PNG just written").to_rgb8();
        assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
        image
            .pixels()
            .filter(|p| {
                let [r, g, b] = p.0;
                r.max(g).max(b) - r.min(g).min(b) > 40
            })
            .count()
    }

    #[test]
    fn line_chart_draws_its_series_on_linear_and_log_axes() {
        for (x_log, y_log) in [(false, false), (true, true)] {
            let chart = LineChart {
                title: "ROC".into(),
                x_label: "false positive rate".into(),
                y_label: "true positive rate".into(),
                series: vec![Series {
                    label: "attack".into(),
                    points: vec![
                        (0.0, 0.0),
                        (0.001, 0.01),
                        (0.01, 0.05),
                        (0.1, 0.3),
                        (1.0, 1.0),
                    ],
                }],
                x_log,
                y_log,
                ..LineChart::default()
            };
            let path = temp(&format!("line-{x_log}.png"));
            chart.write_png(&path).expect("a chart with points draws");
            assert!(coloured_pixels(&path) > 500, "the line is drawn");
            std::fs::remove_file(&path).ok();
        }
    }

    #[test]
    fn an_empty_chart_is_refused() {
        let chart = LineChart {
            title: "nothing".into(),
            series: vec![Series {
                label: "only non-positive".into(),
                points: vec![(0.0, 1.0)],
            }],
            x_log: true,
            ..LineChart::default()
        };
        let refused = chart.write_png(&temp("empty.png"));
        assert!(
            matches!(refused, Err(PlotError::Data { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn bar_chart_draws_bars_and_refuses_ragged_series() {
        let mut chart = BarChart {
            title: "membership".into(),
            y_label: "accuracy".into(),
            categories: vec!["k = 2".into(), "k = 4".into()],
            series: vec![
                BarSeries {
                    label: "train".into(),
                    values: vec![0.6, 0.55],
                    errors: Some(vec![0.02, 0.02]),
                },
                BarSeries {
                    label: "test".into(),
                    values: vec![0.5, 0.51],
                    errors: None,
                },
            ],
            y_range: Some((0.0, 1.0)),
        };
        let path = temp("bars.png");
        chart
            .write_png(&path)
            .expect("a well-formed bar chart draws");
        assert!(coloured_pixels(&path) > 5_000, "the bars are drawn");
        std::fs::remove_file(&path).ok();
        chart.series[1].values.pop();
        assert!(matches!(
            chart.write_png(&path),
            Err(PlotError::Data { .. })
        ));
        chart.series[1].values.push(f64::NAN);
        assert!(matches!(
            chart.write_png(&path),
            Err(PlotError::Data { .. })
        ));
    }
}
