"""Reference SSIM, PSNR and MSE values for heist's metrics, computed with scikit-image.

Run from the repository root:

    pip install scikit-image numpy
    python3 tests/python/ssim_fixtures.py > tests/fixtures/ssim.json

Every image is stored as 8-bit pixels; both sides compare them as float64 `p / 255` in [0, 1].
SSIM follows Wang et al. 2004 as the issue fixes it: 11x11 Gaussian window with sigma 1.5
(truncate 3.5), K1 = 0.01, K2 = 0.03, population covariance, mean over the valid window
positions (scikit-image crops (11 - 1) // 2 = 5 pixels at each border before the mean).
"""

import json

import numpy as np
import skimage
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity


def pair(rng, h, w, kind):
    if kind == "noise":
        a = rng.integers(0, 256, size=(h, w))
        b = rng.integers(0, 256, size=(h, w))
    elif kind == "blur":
        yy, xx = np.mgrid[0:h, 0:w]
        a = 255 * np.exp(-((yy - h / 2) ** 2 + (xx - w / 3) ** 2) / 30.0)
        b = np.clip(a + rng.normal(0, 25, size=(h, w)), 0, 255)
    elif kind == "digit":
        a = np.zeros((h, w))
        a[6:22, 12:16] = 255
        a[6:9, 9:16] = 200
        b = np.roll(a, 1, axis=1) * 0.8
    elif kind == "sparse":
        a = np.zeros((h, w))
        b = np.zeros((h, w))
        idx = rng.integers(0, h * w, size=40)
        a.flat[idx] = 255
        b.flat[idx[:25]] = 180
    elif kind == "same":
        a = rng.integers(0, 256, size=(h, w))
        b = a.copy()
    else:
        raise ValueError(kind)
    return np.rint(a).astype(np.uint8), np.rint(b).astype(np.uint8)


def main():
    rng = np.random.default_rng(20041)
    cases = []
    for name, h, w, kind in [
        ("noise-28", 28, 28, "noise"),
        ("blur-28", 28, 28, "blur"),
        ("digit-28", 28, 28, "digit"),
        ("sparse-28", 28, 28, "sparse"),
        ("same-28", 28, 28, "same"),
        ("blur-13x17", 13, 17, "blur"),
        ("noise-11x11", 11, 11, "noise"),
    ]:
        a8, b8 = pair(rng, h, w, kind)
        a = a8.astype(np.float64) / 255.0
        b = b8.astype(np.float64) / 255.0
        ssim = {}
        for data_range in (1.0, 255.0):
            ssim[str(int(data_range))] = float(
                structural_similarity(
                    a,
                    b,
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                    data_range=data_range,
                )
            )
        case = {
            "name": name,
            "height": h,
            "width": w,
            "a": a8.flatten().tolist(),
            "b": b8.flatten().tolist(),
            "ssim_data_range_1": ssim["1"],
            "ssim_data_range_255": ssim["255"],
            "mse": float(mean_squared_error(a, b)),
        }
        if case["mse"] > 0:
            case["psnr_data_range_1"] = float(peak_signal_noise_ratio(a, b, data_range=1.0))
        cases.append(case)
    out = {
        "generator": "tests/python/ssim_fixtures.py",
        "scikit_image": skimage.__version__,
        "numpy": np.__version__,
        "ssim_call": "structural_similarity(a, b, gaussian_weights=True, sigma=1.5, "
        "use_sample_covariance=False, data_range=R)",
        "cases": cases,
    }
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
