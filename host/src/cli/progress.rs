//! Progress on stderr. On a terminal: indicatif bars and spinners. Where stderr is not a
//! terminal (a log file, CI, `nohup`), indicatif draws nothing, so a long run would print
//! nothing for many minutes: there each change of message becomes one line with the time
//! since the start, and a moving bar one line at most every [`PLAIN_EVERY`].

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The least time between two lines of a moving bar when stderr is not a terminal.
pub const PLAIN_EVERY: Duration = Duration::from_secs(15);

/// A spinner or a bar that also reports to a log.
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    /// `Some(time of the last line)` when stderr is not a terminal (lines instead of a bar).
    plain: Option<Mutex<Option<Instant>>>,
}

impl Progress {
    fn new(bar: ProgressBar, label: &str) -> Self {
        bar.set_prefix(label.to_owned());
        let plain = (!std::io::stderr().is_terminal()).then(|| Mutex::new(None));
        Self {
            bar,
            start: Instant::now(),
            plain,
        }
    }

    /// A spinner for work of unknown length, labelled `label`.
    pub fn spinner(label: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{prefix} {spinner} {elapsed} {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Self::new(bar, label)
    }

    /// A bar of `len` steps, labelled `label`.
    pub fn bar(label: &str, len: u64) -> Self {
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} {elapsed}, eta {eta} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self::new(bar, label)
    }

    /// Nothing drawn, nothing printed (for `--quiet`).
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
            start: Instant::now(),
            plain: None,
        }
    }

    /// Sets the number of steps of the bar (and the prefix to `prefix`).
    pub fn restart(&self, len: u64, prefix: String) {
        self.bar.set_length(len);
        self.bar.set_prefix(prefix);
    }

    /// Sets the message; where stderr is not a terminal, prints it.
    pub fn message(&self, message: String) {
        if self.plain.is_some() {
            self.line(&message);
        }
        self.bar.set_message(message);
    }

    /// Moves the bar to `position` with `message`; where stderr is not a terminal, prints
    /// a line at most every [`PLAIN_EVERY`].
    pub fn position(&self, position: u64, message: String) {
        if let Some(last) = &self.plain {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|t| t.elapsed() >= PLAIN_EVERY) {
                *last = Some(Instant::now());
                self.line(&format!(
                    "{position}/{} {message}",
                    self.bar.length().unwrap_or(0)
                ));
            }
        }
        self.bar.set_position(position);
        self.bar.set_message(message);
    }

    /// A line above the bar (on its own where stderr is not a terminal).
    pub fn println(&self, line: &str) {
        if self.plain.is_some() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Prints `line` above the bars of `multi`, or on its own where stderr is not a terminal
    /// (where indicatif would drop it).
    pub fn println_above(multi: &MultiProgress, line: &str) {
        if std::io::stderr().is_terminal() {
            multi.println(line).ok();
        } else {
            eprintln!("{line}");
        }
    }

    /// Prints `line` only where stderr is not a terminal: what a terminal shows in a bar.
    pub fn plain_line(line: &str) {
        if !std::io::stderr().is_terminal() {
            eprintln!("{line}");
        }
    }

    fn line(&self, message: &str) {
        eprintln!(
            "[{:>8.1} s] {}: {message}",
            self.start.elapsed().as_secs_f64(),
            self.bar.prefix()
        );
    }
}
