"""Face crops from LabelImg / Pascal-VOC XML boxes (the annotation step of reference 000).

One XML per picture, as LabelImg writes it::

    <annotation>
      <filename>pic.jpg</filename>
      <size><width>640</width><height>480</height><depth>3</depth></size>
      <object><name>face</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>110</xmax><ymax>120</ymax></bndbox></object>
      ...
    </annotation>

`crop_voc` checks every file first (bad XML, missing fields, empty or out-of-image boxes, missing
pictures: one line naming the file), then writes `OUT/<object name>/<picture>_<k>.png`, a labelled
folder that `--data OUT` (and `--labeled`) reads.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from core.errors import DataError
from core.images import exif_orientation, exif_transpose_method, open_image
from data_pipelines.images import IMAGE_EXTENSIONS, fit_square, to_mode
from data_pipelines.imagetools import output_stems, save_into, staged_dir


@dataclass
class VocObject:
    name: str
    xmin: int
    ymin: int
    xmax: int
    ymax: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.xmin, self.ymin, self.xmax, self.ymax)


@dataclass
class VocAnnotation:
    path: str  # the XML file
    filename: str
    width: int | None
    height: int | None
    objects: list[VocObject] = field(default_factory=list)


def _text(node, tag, xml_path, where="") -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(f"{xml_path}: missing <{tag}>{where}")
    return child.text.strip()


def _number(node, tag, xml_path, where="") -> int:
    text = _text(node, tag, xml_path, where)
    try:
        return int(round(float(text)))
    except (ValueError, OverflowError):  # not a number, nan, or inf
        raise DataError(f"{xml_path}: <{tag}>{where} is not a number: {text!r}") from None


def parse_voc(xml_path: str) -> VocAnnotation:
    """Parses one Pascal-VOC XML and checks its boxes against its own <size> (when given).

    Raises:
        DataError: unreadable or malformed XML, missing fields, empty boxes, boxes outside the image.
    """
    try:
        root = ET.parse(xml_path).getroot()
    except FileNotFoundError:
        raise DataError(f"annotation not found: {xml_path}") from None
    except ET.ParseError as e:
        raise DataError(f"{xml_path}: bad XML ({e})") from None
    except LookupError as e:  # an <?xml encoding="..."?> that Python does not know
        raise DataError(f"{xml_path}: bad XML ({e})") from None
    except OSError as e:
        raise DataError(f"cannot read {xml_path}: {e.strerror or e}") from None
    if root.tag != "annotation":
        raise DataError(f"{xml_path}: not a Pascal-VOC annotation (root <{root.tag}>, expected <annotation>)")
    filename = _text(root, "filename", xml_path)
    width = height = None
    size = root.find("size")
    if size is not None and size.find("width") is not None:
        width, height = _number(size, "width", xml_path, " in <size>"), _number(size, "height", xml_path, " in <size>")
        if width <= 0 or height <= 0:
            width = height = None  # some tools write 0 when they don't know: use the picture's size
    ann = VocAnnotation(xml_path, filename, width, height)
    for k, obj in enumerate(root.findall("object"), start=1):
        name = _text(obj, "name", xml_path, f" in object {k}")
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{xml_path}: object {k} ({name!r}) has no <bndbox>")
        where = f" in object {k} ({name!r})"
        o = VocObject(name, *(_number(box, t, xml_path, where) for t in ("xmin", "ymin", "xmax", "ymax")))
        ann.objects.append(o)
    if width is not None:
        check_boxes(ann, width, height)
    return ann


def check_boxes(ann: VocAnnotation, width: int, height: int) -> None:
    """Every box non-empty and inside width x height (VOC's 1-based pixel coordinates are accepted)."""
    for k, o in enumerate(ann.objects, start=1):
        if o.xmax <= o.xmin or o.ymax <= o.ymin:
            raise DataError(f"{ann.path}: object {k} ({o.name!r}) has an empty box {o.box}")
        if o.xmin < 0 or o.ymin < 0 or o.xmax > width or o.ymax > height:
            raise DataError(f"{ann.path}: object {k} ({o.name!r}) box {o.box} is outside the {width}x{height} image")


def find_picture(images_dir: str, ann: VocAnnotation) -> str:
    """The picture an annotation names: <filename>, else the XML's stem with any image extension."""
    candidate = os.path.join(images_dir, os.path.basename(ann.filename))
    if os.path.isfile(candidate):
        return candidate
    stem = os.path.splitext(os.path.basename(ann.path))[0]
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        candidate = os.path.join(images_dir, stem + ext)
        if os.path.isfile(candidate):
            return candidate
    raise DataError(f"{ann.path}: picture {ann.filename!r} not found in {images_dir}")


def annotated_picture(ann: VocAnnotation, picture: str):
    """(the picture as RGB in the frame its boxes were drawn in, the Pillow transpose that turns a crop
    of it upright or None). A picture with an EXIF orientation (a phone's portrait JPEG, stored sideways)
    was annotated upright by a tool that applies it (LabelImg since 1.8), or as stored by one that does
    not: the XML's <size> tells which when it is the stored size and not the upright one; else upright."""
    img = open_image(picture, exif=False)
    orientation = exif_orientation(img)
    rgb = to_mode(img, 3)
    turn = exif_transpose_method(orientation)
    if turn is None:
        return rgb, None
    upright = rgb.transpose(turn)
    if ann.width is not None and (ann.width, ann.height) == rgb.size != upright.size:
        return rgb, turn  # boxes in the stored frame: crop there, then turn the crop upright
    return upright, None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._") or "object"


def crop_voc(images_dir: str, annotations_dir: str, out: str, size: int = 64, pad: bool = False, log=print) -> dict:
    """Crops every annotated object into OUT/<name>/<picture>_<k>.png (size x size, RGB).

    The box is made square by centre-cropping (default) or by padding with white (`pad`).
    Everything is checked before anything is written.
    """
    if size < 1:
        raise DataError(f"--size must be positive, got {size}")
    for d, what in ((images_dir, "images folder"), (annotations_dir, "annotations folder")):
        if not os.path.isdir(d):
            raise DataError(f"{what} not found: {d}")
    xmls = sorted(os.path.join(annotations_dir, f) for f in os.listdir(annotations_dir) if f.lower().endswith(".xml"))
    if not xmls:
        raise DataError(f"no .xml annotations in {annotations_dir}")
    jobs = []
    for xml_path in xmls:
        ann = parse_voc(xml_path)
        picture = find_picture(images_dir, ann)
        img, turn = annotated_picture(ann, picture)
        check_boxes(ann, *img.size)
        jobs.append((ann, picture, img, turn))
    pictures = list(dict.fromkeys(picture for _, picture, _, _ in jobs))
    stems = dict(zip(pictures, output_stems(images_dir, pictures)))  # pic.jpg beside pic.png: pic-jpg_1.png
    counts: dict[str, int] = {}
    numbered: dict[str, int] = {}  # crops so far of each output stem: two XMLs of one picture go on counting
    with staged_dir(out) as tmp:
        for ann, picture, img, turn in jobs:
            stem = _safe(stems[picture])
            for o in ann.objects:
                crop = img.crop(o.box)
                crop = fit_square(crop.transpose(turn) if turn is not None else crop, size, "pad" if pad else "crop")
                numbered[stem] = k = numbered.get(stem, 0) + 1
                save_into(crop, tmp, os.path.join(_safe(o.name), f"{stem}_{k}.png"), out)
                counts[o.name] = counts.get(o.name, 0) + 1
        if not counts:
            raise DataError(f"no <object> boxes in the {len(xmls)} annotations in {annotations_dir}")
    return {"annotations": len(xmls), "crops": sum(counts.values()), "per_class": counts}
