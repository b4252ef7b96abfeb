"""Data cards of the audio exports (``OUT/data.json``, machine-readable, and ``OUT/README.md``) and
their caches (a JSON file of one record per written file, rewritten atomically)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from notewave.audio.sources.packages import GamePackage
from notewave.core.debian import package_version
from notewave.core.io import atomic_open

HOLDOUT_RULE = (
    "per package, the audio files sorted by relative path (before any is left out); index i is held out "
    "for test when i % holdout_every == holdout_every - 1 (at least one track per package)"
)


def load_cache(path: Path, version: int) -> dict[str, dict]:
    """The records of the cache file ``path`` (``{}`` when missing, unreadable or of another version)."""
    try:
        cache = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache.get("tracks", {}) if isinstance(cache, dict) and cache.get("version") == version else {}


def save_cache(path: Path, version: int, tracks: Mapping[str, dict]) -> None:
    """Write the cache records ``tracks`` to ``path`` atomically."""
    with atomic_open(path) as handle:
        json.dump({"version": version, "tracks": tracks}, handle, indent=1, sort_keys=True)


def _hours(records: list[dict]) -> float:
    return round(sum(r["seconds"] for r in records) / 3600, 3)


def write_json_and_readme(out: Path, card: dict, readme: str) -> None:
    """Write ``card`` to ``OUT/data.json`` and ``readme`` to ``OUT/README.md``, each atomically."""
    with atomic_open(out / "data.json") as handle:
        json.dump(card, handle, indent=1)
        handle.write("\n")
    with atomic_open(out / "README.md") as handle:
        handle.write(readme)


def write_game_music_card(
    out: Path,
    cache: Mapping[str, dict],
    registry: Mapping[str, GamePackage],
    holdout_every: int,
    sample_rate: int,
) -> dict[str, Any]:
    """Build and write the game-music data card from the cache records of every exported track.

    Returns:
        The card: ``packages`` (per package: Debian package, version, licence, source, container,
        ``tracks``/``hours`` per split, ``test_tracks``, ``skipped``, ``clipped_tracks``) and ``totals``.
    """
    packages: dict[str, Any] = {}
    for name, package in registry.items():
        records = [r for r in cache.values() if r.get("package") == name]
        if not records:
            continue
        kept = [r for r in records if "skipped" not in r]
        split = {
            s: sorted((r for r in kept if r["split"] == s), key=lambda r: r["name"])
            for s in ("train", "test")
        }
        caps = sorted({r["max_seconds"] for r in kept if r["max_seconds"] is not None})
        packages[name] = {
            "package": package.package,
            "version": package_version(package.package),
            "licence": package.licence,
            "copyright": str(package.copyright_file),
            "about": package.about,
            "source": str(package.root) + (f" ({package.member_prefix})" if package.member_prefix else ""),
            "container": package.container,
            "sample_rate": sample_rate,
            "tracks": {s: len(v) for s, v in split.items()},
            "hours": {s: _hours(v) for s, v in split.items()},
            "test_tracks": [r["name"] for r in split["test"]],
            "skipped": {r["name"]: r["skipped"] for r in records if "skipped" in r},
            "excluded_patterns": list(package.exclude),
            "clipped_tracks": sorted(r["name"] for r in kept if r["clipped_samples"]),
            "source_rates": sorted({r["source_rate"] for r in kept}),
            **({"max_seconds": caps} if caps else {}),
        }
    totals = {
        "tracks": {s: sum(p["tracks"][s] for p in packages.values()) for s in ("train", "test")},
        "hours": {s: round(sum(p["hours"][s] for p in packages.values()), 3) for s in ("train", "test")},
    }
    card = {
        "dataset": "game-music",
        "format": f"FLAC, 16-bit PCM, mono (channel mean), {sample_rate} Hz (soxr HQ)",
        "layout": "<package>/train/<track>.flac and <package>/test/<track>.flac",
        "holdout_every": holdout_every,
        "holdout_rule": HOLDOUT_RULE,
        "packages": packages,
        "totals": totals,
    }
    write_json_and_readme(out, card, _game_music_readme(card))
    return card


def _game_music_readme(card: dict) -> str:
    lines = [
        "# Game music (Debian packages) as mono FLAC",
        "",
        "Written by `notewave data game-music`. " + card["format"] + ". Layout: `" + card["layout"] + "`.",
        "",
        f"Held out whole (`test/`): {card['holdout_rule']}; holdout_every = {card['holdout_every']}.",
        "The codec (`notewave train codec --audio DIR`) and the audio LM train on `train/` and validate "
        "on `test/`.",
        "",
        "| package | Debian package | licence | train tracks | train h | test tracks | test h |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, p in card["packages"].items():
        lines.append(
            f"| {name} | {p['package']} {p['version']} | {p['licence']} | {p['tracks']['train']} | "
            f"{p['hours']['train']:.2f} | {p['tracks']['test']} | {p['hours']['test']:.2f} |"
        )
    t = card["totals"]
    lines += [
        f"| **total** | | | {t['tracks']['train']} | {t['hours']['train']:.2f} | {t['tracks']['test']} | "
        f"{t['hours']['test']:.2f} |",
        "",
        "## Per package",
        "",
    ]
    for name, p in card["packages"].items():
        lines += [
            f"### {name}",
            "",
            f"- {p['about']}",
            f"- source: `{p['source']}` ({p['container']}); licence per `{p['copyright']}`: {p['licence']}",
            f"- source rates: {', '.join(f'{r} Hz' for r in p['source_rates'])}",
            f"- test tracks: {', '.join(p['test_tracks']) or '(none)'}",
        ]
        if p["excluded_patterns"]:
            lines.append("- files left out by name: " + ", ".join(f"`{x}`" for x in p["excluded_patterns"]))
        if p["skipped"]:
            lines.append("- left out: " + "; ".join(f"{k} ({v})" for k, v in p["skipped"].items()))
        if p["clipped_tracks"]:
            lines.append("- clipped after the downmix and resampling: " + ", ".join(p["clipped_tracks"]))
        if p.get("max_seconds"):
            lines.append(f"- truncated to the first {p['max_seconds']} s of each track")
        lines.append("")
    return "\n".join(lines)


def write_renders_card(
    out: Path, records: list[dict], settings: dict, per_piece_fonts: int
) -> dict[str, Any]:
    """Build and write the data card of ``notewave data renders`` from its cache records.

    Returns:
        The card: ``sources`` (per MIDI source: folder, ``pieces``/``renders``/``hours`` per split,
        renders per font, skipped renders with the reason), ``fonts`` (name -> path), the render
        settings and ``totals``.
    """
    sources: dict[str, Any] = {}
    for name in sorted({r["source"] for r in records}):
        mine = [r for r in records if r["source"] == name]
        kept = [r for r in mine if "skipped" not in r]
        splits = sorted({r["split"] for r in mine})
        sources[name] = {
            "midi_folder": mine[0]["folder"],
            "pieces": {s: len({r["piece"] for r in kept if r["split"] == s}) for s in splits},
            "renders": {s: sum(r["split"] == s for r in kept) for s in splits},
            "hours": {s: _hours([r for r in kept if r["split"] == s]) for s in splits},
            "renders_per_font": {
                f: sum(r["font"] == f for r in kept) for f in sorted({r["font"] for r in kept})
            },
            "skipped": {
                r["split"] + "/" + r["piece"] + "__" + r["font"]: r["skipped"] for r in mine if "skipped" in r
            },
        }
    fonts = {r["font"]: r["font_path"] for r in records}
    card = {
        "dataset": "renders",
        "format": f"FLAC, 16-bit PCM, mono, {settings['sample_rate']} Hz, loudness-normalised (RMS -20 dBFS)",
        "layout": "<source>/<train|valid|test>/<piece>__<font>.flac",
        "renderer": "FluidSynth (notewave.bridge.render.render_midi)",
        **{k: settings[k] for k in ("reverb", "chorus", "max_seconds")},
        "per_piece_fonts": per_piece_fonts,
        "fonts": dict(sorted(fonts.items())),
        "sources": sources,
        "totals": {
            "renders": sum(sum(s["renders"].values()) for s in sources.values()),
            "hours": round(sum(sum(s["hours"].values()) for s in sources.values()), 3),
        },
    }
    lines = [
        "# FluidSynth renders of MIDI folders",
        "",
        f"Written by `notewave data renders`. {card['format']}. Layout: `{card['layout']}`; a piece keeps "
        "the split of its MIDI file.",
        f"Reverb {'on' if card['reverb'] else 'off'}, chorus {'on' if card['chorus'] else 'off'}; the first "
        f"{card['max_seconds']} s of each piece; {per_piece_fonts} SoundFont(s) per piece, drawn per piece "
        "from the seed.",
        "",
        "SoundFonts: " + ", ".join(f"{k} (`{v}`)" for k, v in card["fonts"].items()),
        "",
        "| source | MIDI folder | split | pieces | renders | hours |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name, s in sources.items():
        for split in s["renders"]:
            lines.append(
                f"| {name} | `{s['midi_folder']}` | {split} | {s['pieces'][split]} | {s['renders'][split]} | "
                f"{s['hours'][split]:.3f} |"
            )
    lines += ["", f"Total: {card['totals']['renders']} renders, {card['totals']['hours']:.3f} h.", ""]
    for name, s in sources.items():
        if s["skipped"]:
            lines.append(f"Left out of {name}: " + "; ".join(f"{k} ({v})" for k, v in s["skipped"].items()))
    write_json_and_readme(out, card, "\n".join(lines) + "\n")
    return card
