"""Render one scene offscreen, let its easing settle, and write a PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .engine import RenderEngine

#: Simulated frame time while settling (the easing uses it, not the wall clock).
SETTLE_DT_S = 1.0 / 30.0


def render_settled(
    engine: RenderEngine,
    scene_name: str,
    params: Mapping[str, Any],
    settle_s: float = 3.0,
    dt_s: float = SETTLE_DT_S,
) -> None:
    """Show ``scene_name`` with ``params`` in ``engine`` and run ``settle_s`` of frames."""
    engine.show(scene_name, params)
    frames = max(1, round(settle_s / dt_s))
    for _ in range(frames):
        engine.step(dt_s)


def snapshot(
    scene_name: str,
    params: Mapping[str, Any],
    out_path: Path | str,
    width: int = 1280,
    height: int = 720,
    settle_s: float = 3.0,
    *,
    stereo: bool = False,
    scene_dirs: Sequence[Path | str] = (),
    engine: RenderEngine | None = None,
    head_hpr: Sequence[float] = (0.0, 0.0, 0.0),
) -> Path:
    """Render ``scene_name`` with ``params`` offscreen after ``settle_s`` and write a PNG.

    Panda3D allows one window system per process: pass ``engine`` to reuse an
    open offscreen engine (its size is then used); otherwise one is opened and closed.
    """
    if engine is not None:
        engine.set_head_pose((0.0, 0.0, 0.0), head_hpr)
        render_settled(engine, scene_name, params, settle_s)
        return engine.save_png(out_path)
    with RenderEngine(
        "offscreen", width, height, stereo=stereo, scene_dirs=scene_dirs, multisamples=0
    ) as own:
        own.set_head_pose((0.0, 0.0, 0.0), head_hpr)
        render_settled(own, scene_name, params, settle_s)
        return own.save_png(out_path)


#: Contact sheet layout (pixels): the text column beside each step's two pictures.
SHEET_TEXT_W = 330
SHEET_PAD = 8
SHEET_HEADER_H = 44


def _font(size_px: int) -> Any:
    from PIL import ImageFont

    # DejaVu has the arrows and dashes labels use; Pillow's own font lacks them.
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size_px)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size_px)
    except (TypeError, OSError):  # Pillow without FreeType: the small bitmap font
        return ImageFont.load_default()


def _wrap(text: str, width_chars: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width_chars) or [""]


def contact_sheet(
    hierarchy: Any,
    scenes: Mapping[str, Any],
    out_path: Path | str,
    cell_width: int = 384,
    cell_height: int = 216,
    settle_s: float = 2.0,
    *,
    engine: RenderEngine | None = None,
    scene_dirs: Sequence[Path | str] = (),
) -> Path:
    """Every step of ``hierarchy`` at intensity 0 and 1 in one PNG, with label and SUDS.

    One row per step: step number, id, label and expected SUDS, then the patient's
    view at intensity 0 and at 1 (each a cut into the step, ``settle_s`` of motion).
    For a therapist reviewing a whole hierarchy before using it.
    """
    from PIL import Image, ImageDraw

    def render_all(eng: RenderEngine) -> list[tuple[Any, Any]]:
        other = next(n for n in eng.specs if n != hierarchy.scene)
        rows = []
        for index in range(len(hierarchy.steps)):
            pair = []
            for level in (0.0, 1.0):
                eng.set_head_pose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
                eng.show(other, {})  # a cut: the step's parameters apply at once
                render_settled(eng, hierarchy.scene,
                               hierarchy.step_params(index, level, scenes), settle_s)
                pair.append(Image.fromarray(eng.read_pixels()))
            rows.append((pair[0], pair[1]))
        return rows

    if engine is not None:
        pictures = render_all(engine)
    else:
        with RenderEngine("offscreen", cell_width, cell_height, scene_dirs=scene_dirs,
                          multisamples=0) as own:
            pictures = render_all(own)
    cell_w, cell_h = pictures[0][0].size
    pad = SHEET_PAD
    width = SHEET_TEXT_W + 2 * (cell_w + pad) + pad
    height = SHEET_HEADER_H + len(pictures) * (cell_h + pad) + pad
    sheet = Image.new("RGB", (width, height), (245, 244, 240))
    draw = ImageDraw.Draw(sheet)
    title_font, label_font, small_font = _font(20), _font(15), _font(13)
    title = f"{hierarchy.title}  ({hierarchy.scene}, {len(hierarchy.steps)} steps)"
    while len(title) > 8 and draw.textlength(title, font=title_font) > width - 2 * pad:
        title = title[:-2].rstrip() + "…"  # a long title must not run off the sheet
        title = title[:-1] if title.endswith("……") else title
    draw.text((pad, 10), title, fill=(20, 20, 20), font=title_font)
    for col, name in enumerate(("intensity 0", "intensity 1")):
        x = SHEET_TEXT_W + pad + col * (cell_w + pad)
        draw.text((x, SHEET_HEADER_H - 16), name, fill=(90, 90, 90), font=small_font)
    for index, (step, (low, high)) in enumerate(zip(hierarchy.steps, pictures, strict=True)):
        y = SHEET_HEADER_H + index * (cell_h + pad)
        draw.text((pad, y + 4), f"{index + 1}. {step.id}", fill=(20, 20, 20), font=label_font)
        line_y = y + 26
        for line in _wrap(step.label, 38)[:6]:
            draw.text((pad, line_y), line, fill=(50, 50, 50), font=small_font)
            line_y += 17
        draw.text((pad, line_y + 6), f"expected SUDS {step.expected_suds}",
                  fill=(150, 40, 30), font=label_font)
        if step.intensity:
            ranges = ", ".join(f"{k} {a:g}→{b:g}" for k, (a, b) in step.intensity.items())
            for line in _wrap(f"intensity: {ranges}", 42)[:3]:
                line_y += 17
                draw.text((pad, line_y + 12), line, fill=(90, 90, 90), font=small_font)
        sheet.paste(low, (SHEET_TEXT_W + pad, y))
        sheet.paste(high, (SHEET_TEXT_W + 2 * pad + cell_w, y))
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    return out
