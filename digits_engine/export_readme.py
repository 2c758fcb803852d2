"""The README of an export archive: what each file is, and a stand-alone
example (Keras and Pillow, no DIGITS) that prepares an image as the training
images were and reads the model's answer: the top classes, the class of each
pixel, or, for a detection model, the boxes found, decoded by `decode.py` (a
copy of detection_decode, which needs numpy alone) and taken back to the
image's own pixels.
"""
from pathlib import Path

from . import detection_decode
from .inference import MIN_SCORE

DECODE_FILE = "decode.py"

README_CODE = '''\
import json, sys, keras, numpy as np
from PIL import Image
pre = json.load(open("info.json"))["preprocessing"]
labels = open("labels.txt").read().splitlines()
model = keras.models.load_model("model.keras", compile=False)
h, w, c, crop = pre["height"], pre["width"], pre["channels"], pre["crop"]
image = Image.open(sys.argv[1]).convert("RGB" if c == 3 else "L").resize((w, h), Image.Resampling.BILINEAR)
x = np.asarray(image, np.float32).reshape(1, h, w, c)
'''
README_CROP = '''\
top, left = (h - crop) // 2, (w - crop) // 2  # the centre square, as the network was trained on
x = x[:, top:top + crop, left:left + crop]
'''
README_OUTPUT = {
    "classification": '''\
logits = model.predict(x, verbose=0)[0]
p = np.exp(logits - logits.max()); p /= p.sum()
for i in np.argsort(-p)[:5]:
    print(f"{p[i]:.4f}  {labels[i]}")
''',
    "segmentation": '''\
classes = model.predict(x, verbose=0)[0].argmax(axis=-1)  # the class of each pixel
Image.fromarray(classes.astype(np.uint8)).save("classes.png")
''',
}
DETECTION_CODE = f'''\
import json, sys, keras, numpy as np
from PIL import Image
from decode import decode  # decode.py, next to this file
info = json.load(open("info.json"))
pre, how = info["preprocessing"], info["box_decoding"]
labels = open("labels.txt").read().splitlines()
model = keras.models.load_model("model.keras", compile=False)
h, w, c = pre["height"], pre["width"], pre["channels"]
image = Image.open(sys.argv[1]).convert("RGB" if c == 3 else "L")
if pre["resize_mode"] == "pad":  # shrunk to fit only if larger, shape kept; black on the right and bottom
    scale = min(1.0, h / image.height, w / image.width)
    size = (max(1, int(image.width * scale + 0.5)), max(1, int(image.height * scale + 0.5)))
    canvas = Image.new(image.mode, (w, h))
    canvas.paste(image.resize(size, Image.Resampling.BILINEAR))
else:  # squash
    size = (w, h)
    canvas = image.resize(size, Image.Resampling.BILINEAR)
x = np.asarray(canvas, np.float32).reshape(1, h, w, c)
found = decode(model.predict(x, verbose=0), how["stride"], how["max_detections"], {MIN_SCORE})[0]
sx, sy = size[0] / image.width, size[1] / image.height  # back to the image's own pixels
boxes = np.clip(found["boxes"] / [sx, sy, sx, sy], 0, [image.width, image.height] * 2)
for (left, top, right, bottom), score, k in zip(boxes, found["scores"], found["classes"]):
    print(f"{{score:.4f}}  {{labels[k]}}  {{left:.1f}} {{top:.1f}} {{right:.1f}} {{bottom:.1f}}")
'''


def readme_code(task: str, crop) -> str:
    """The README's stand-alone example, for this model's task and crop."""
    if task == "detection":
        return DETECTION_CODE
    return README_CODE + (README_CROP if crop else "") + README_OUTPUT.get(task, README_OUTPUT["classification"])


def write_decoder(folder: Path) -> None:
    """decode.py: detection_decode's own source (numpy only), so the example needs nothing of DIGITS."""
    source = Path(detection_decode.__file__).read_text(encoding="utf-8")
    (folder / DECODE_FILE).write_text("# Copied from DIGITS (digits_engine/detection_decode.py) by `digits export`.\n"
                                      + source, encoding="utf-8")


def readme(info: dict) -> str:
    source, pre = info["source_model"], info["preprocessing"]
    detection = info["task"] == "detection"
    return f"""# {source['name']}: a {info['task']} model exported by DIGITS

Model {source['id']}, epoch {info['epoch']}, exported {info['exported'][:10]} by digits {info['digits_version']}.

- `model.keras`: the Keras 3 model (`keras.models.load_model("model.keras")`).
- `saved_model/`: the same as a TensorFlow SavedModel (signature `serving_default`), for TF Serving.
- `labels.txt`: the class names, one a line, in the order of the model's outputs.
- `info.json`: the preprocessing, the input and the output, and the source model.
{_files_detection() if detection else ""}
The model takes float32 pixels in 0..255, shape (N, {', '.join(map(str, info['input']['shape']))}): the
mean subtraction and scaling are layers inside it. {_output_text(detection)}
The training images were resized by "{pre['resize_mode']}" to {pre['width']}x{pre['height']}. {_modes_text(detection)}

## {"Find the objects in an image" if detection else "Classify an image"} with Keras and Pillow (no DIGITS needed)

Save this as `{"detect" if detection else "classify"}.py` next to these files and run \
`python {"detect" if detection else "classify"}.py image.png`:

```python
{readme_code(info['task'], pre['crop'])}```
"""


def _files_detection() -> str:
    return (f"- `{DECODE_FILE}`: reads boxes out of the model's output (numpy only); `info.json`'s box_decoding "
            "gives its stride and maximum number of boxes.\n")


def _output_text(detection: bool) -> str:
    if detection:
        return ("It outputs, per image,\nan H/4 x W/4 x (K + 4) map (a CenterNet's): K class-heatmap logits "
                "(a sigmoid makes them scores),\nthen each box's width and height in output cells and its centre's "
                "offset dx, dy within the cell.\n`decode.py` turns this into boxes, best first, in the input's "
                "pixels.")
    return "It outputs logits: a softmax makes them probabilities."


def _modes_text(detection: bool) -> str:
    if detection:
        return ("The example\nhandles pad and squash (crop, fill and half_crop keep the aspect ratio: crop or pad "
                "the image first to match)\nand prints each box (left, top, right, bottom) in the pixels of the image "
                f"given, scoring at least {MIN_SCORE}.")
    return ("The example\nsquashes; the modes crop, fill and half_crop keep the aspect ratio (crop or pad the image "
            "first to match).")
