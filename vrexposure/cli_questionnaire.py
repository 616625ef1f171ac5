"""``vrexposure questionnaire``: give a questionnaire outside a session (e.g. before treatment).

The answers come from ``--answers`` (what the patient filled in on paper or said aloud) or
are asked one item at a time on the terminal; an empty answer or ``-`` leaves the item
unanswered. The completed form is stored as a stand-alone questionnaire file next to the
patient's session recordings (format: :mod:`vrexposure.questionnaires.records`).
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import config_or_exit

OCCASION_CHOICES = ["before_treatment", "after_treatment", "follow_up", "before_session",
                    "after_session"]


def parse_answers(text: str, item_ids: list[str]) -> dict[str, int | None]:
    """``"1,0,2,-,3"`` (in item order, ``-`` = unanswered) or ``"nausea=1,vertigo=0"``."""
    parts = [p.strip() for p in text.split(",")] if text.strip() else []
    answers: dict[str, int | None] = {}
    named = any("=" in p for p in parts)
    if not named and len(parts) != len(item_ids):
        raise click.BadParameter(f"{len(parts)} answers for {len(item_ids)} items (give one "
                                 "per item in order, '-' for unanswered, or item=value pairs)")
    for index, part in enumerate(parts):
        if named:
            if "=" not in part:
                raise click.BadParameter(f"'{part}' is not item=value")
            key, _, value = part.partition("=")
            key = key.strip()
        else:
            key, value = item_ids[index], part
        value = value.strip()
        if value in ("", "-"):
            answers[key] = None
            continue
        try:
            answers[key] = int(value)
        except ValueError:
            raise click.BadParameter(f"{key}: '{value}' is not a whole number") from None
    return answers


@click.command("questionnaire")
@click.argument("questionnaire")
@click.option("--patient", "patient_id", required=True, help="Pseudonymous patient id.")
@click.option("--answers", default=None,
              help="Answers in item order ('1,0,2,-,...'; '-' = unanswered) or "
                   "'item=value,...'. Without it, each item is asked here.")
@click.option("--occasion", type=click.Choice(OCCASION_CHOICES), default="before_treatment",
              show_default=True, help="When in the treatment this is given.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the patient's recordings (default: session.recording_dir).")
@click.option("--config", "config_path", type=click.Path(exists=True), help="Settings file.")
def questionnaire_command(questionnaire: str, patient_id: str, answers: str | None,
                          occasion: str, out_dir: Path | None, config_path: str | None) -> None:
    """Give QUESTIONNAIRE (an id such as ssq, or a YAML file) outside a session and store it
    with the patient's sessions."""
    from .questionnaires import (
        NotAdministrable,
        QuestionnaireError,
        ResponseError,
        check_response,
        find_questionnaire,
    )
    from .questionnaires.records import administer, write_standalone

    config = config_or_exit(config_path)
    extra = [Path(d) for d in config.get("questionnaires", {}).get("dirs", []) or []]
    try:
        definition = find_questionnaire(questionnaire, extra)
        definition.require_text()
    except (KeyError, QuestionnaireError, NotAdministrable) as exc:
        raise click.ClickException(str(exc).strip("'\"")) from exc
    item_ids = list(definition.item_ids)
    if answers is not None:
        responses = parse_answers(answers, item_ids)
    else:
        click.echo(f"{definition.title}\n{definition.instructions}\n"
                   "(Enter a number; empty or '-' leaves an item unanswered.)")
        responses = {}
        for number, item in enumerate(definition.items, start=1):
            anchors = ", ".join(f"{k} = {v}" for k, v in sorted(item.scale.anchors.items()))
            while True:
                text = click.prompt(f"{number}/{len(item_ids)} {item.text} "
                                    f"[{item.scale.min}-{item.scale.max}: {anchors}]",
                                    default="-", show_default=False)
                try:
                    answer = parse_answers(f"{item.id}={text}", item_ids)
                    check_response(definition, item.id, answer[item.id])
                except click.BadParameter as exc:
                    click.echo(str(exc.message), err=True)
                    continue
                except ResponseError as exc:
                    click.echo(str(exc), err=True)
                    continue
                responses.update(answer)
                break
    try:
        events = administer(definition, responses, occasion, "therapist:cli")
        folder = out_dir or Path(config["session"]["recording_dir"])
        path = write_standalone(folder, patient_id, occasion, events)
    except (ResponseError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    from .cli_clinic import index_after_session

    index_after_session(config, path)  # into the clinic record, when there is one
    scored = events[-1]
    for score_id, score in scored["scores"].items():
        value = "missing" if score["value"] is None else f"{score['value']:g}"
        click.echo(f"{score['title'] or score_id}: {value} "
                   f"({score['n_answered']}/{score['n_items']} items answered)")
    if scored["unanswered"]:
        click.echo(f"unanswered: {', '.join(scored['unanswered'])}")
    click.echo(f"saved: {path}")
