#!/usr/bin/env python3
"""Generate the bundled sample corpora deterministically (no copied text: every word comes from here).

    python scripts/make_sample_corpora.py          # (re)write sample_corpora/ and the packaged prose
    python scripts/make_sample_corpora.py --check  # exit 1 if the committed files differ

The output depends only on this file: the generators draw from one seeded Mersenne Twister through
``Random.random()`` alone, whose sequence Python keeps stable across versions and platforms.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "sample_corpora"
PACKAGED_PROSE = REPO / "lstmtui" / "sample_data" / "prose.txt"

PROSE_BYTES = 420_000
CODE_BYTES = 150_000
ARITHMETIC_BYTES = 60_000
BRACKETS_BYTES = 50_000


class Rng:
    """A thin wrapper that only ever calls Random.random(), for a sequence stable across versions."""

    def __init__(self, seed: int):
        self._r = random.Random(seed)

    def below(self, n: int) -> int:
        return min(int(self._r.random() * n), n - 1)

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def chance(self, p: float) -> bool:
        return self._r.random() < p

    def between(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1)


# ------------------------------------------------------------------------------------------------
# English prose: a village-and-coast story told by a small grammar.

WOMEN = "Mara Elin Ada Iris Nell Lena Clara Rosa Alma Edith Hannah Greta Vera June Martha Agnes Lydia Ruth".split()
MEN = "Tobias Jonah Felix Owen Hugo Arthur Simon Peter Walter Leo Oscar Milo Samuel Isaac Caleb Thomas Ezra Ned".split()
TOWNS = (
    "Alderbrook|Marrow Bay|Kestrel Hill|Ashford|Wenlow|Greyhaven|Thornmere|Saltcombe|Brindle|Oakhurst|Fernley|"
    "Hollins Cross"
).split("|")

G: dict[str, list[str]] = {
    "PLACE": [
        "the harbour",
        "the mill by the river",
        "the old orchard",
        "the market square",
        "the lighthouse",
        "the chapel on the hill",
        "the railway station",
        "the bakery on Fell Street",
        "the little library",
        "the stone bridge",
        "the northern road",
        "the walled garden",
        "the village shop",
        "the weir",
        "the edge of the forest",
        "the long meadow",
        "the quarry",
        "the inn at the crossroads",
        "the dunes",
        "the boathouse",
        "the schoolhouse",
        "the ferry landing",
        "the post office",
        "the churchyard",
        "the vegetable plots",
        "the sheep fold",
        "the top of the lane",
        "the cliff path",
        "the town hall",
    ],
    "TIME": [
        "In the morning",
        "Late that afternoon",
        "Before dawn",
        "By evening",
        "At noon",
        "On the third day",
        "That winter",
        "Some weeks later",
        "The next morning",
        "When the bells rang at six",
        "After supper",
        "On Sunday",
        "Early in the spring",
        "At the end of the summer",
        "Just before the storm",
        "Long after midnight",
        "On the morning of the fair",
        "Two days later",
        "In the autumn",
    ],
    "WEATHER": [
        "the rain had stopped",
        "a cold wind came down from the hills",
        "the sky was pale and clear",
        "fog lay over the water",
        "snow had fallen in the night",
        "the air smelled of salt and smoke",
        "the sun was low and golden",
        "a thin rain was falling",
        "the clouds hung low over the roofs",
        "the frost had not yet melted",
        "the wind had turned to the east",
        "the evening was warm and still",
    ],
    "MOVE": [
        "walked",
        "wandered",
        "hurried",
        "went down",
        "climbed up",
        "cycled",
        "drove",
        "ran",
        "made her way",
        "strolled",
        "returned",
        "slipped away",
    ],
    "PERCEIVE": ["noticed", "saw", "found", "caught sight of", "came upon", "discovered", "watched"],
    "SAY": ["said", "whispered", "called", "replied", "murmured", "answered", "insisted", "said quietly"],
    "ASK": ["asked", "whispered", "called", "wondered aloud", "asked again"],
    "OBJ_ADJ": [
        "old",
        "heavy",
        "worn",
        "small",
        "dusty",
        "cracked",
        "faded",
        "rusty",
        "beautiful",
        "plain",
        "green",
        "wooden",
        "silver",
        "broken",
        "tiny",
        "curious",
        "battered",
        "polished",
        "crooked",
        "familiar",
    ],
    "PLACE_ADJ": ["quiet", "cold", "warm", "dark", "bright", "still", "crowded", "empty", "peaceful", "damp", "calm"],
    "DOOR_ADJ": ["green", "heavy", "wooden", "blue", "narrow", "crooked", "back", "side", "painted"],
    "LIGHT_ADJ": ["gold", "grey", "pale", "amber", "blue", "pink", "silver", "red"],
    "ROAD_ADJ": ["long", "narrow", "muddy", "steep", "winding", "quiet", "stony", "dusty"],
    "YEAR_ADJ": ["hard", "good", "long", "quiet", "strange", "dry", "wet", "busy", "lucky", "difficult"],
    "THING": [
        "lantern",
        "letter",
        "basket of apples",
        "red umbrella",
        "brass key",
        "map",
        "kettle",
        "wooden box",
        "photograph",
        "blue coat",
        "fishing net",
        "jar of honey",
        "loaf of bread",
        "compass",
        "notebook",
        "pair of boots",
        "candle",
        "clock",
        "tin cup",
        "violin",
        "shawl",
        "bundle of firewood",
        "parcel",
        "woollen scarf",
        "book of songs",
        "set of keys",
        "tin whistle",
    ],
    "CLOTH": ["woollen scarf", "blue coat", "map", "letter", "blanket", "shawl", "tablecloth", "newspaper"],
    "PLURAL": [
        "apples",
        "candles",
        "letters",
        "boats",
        "chairs",
        "jars",
        "coins",
        "shells",
        "books",
        "cups",
        "feathers",
        "stones",
        "bottles",
        "blankets",
        "seeds",
        "buttons",
        "pebbles",
        "lamps",
    ],
    "ANIMAL": [
        "a grey cat",
        "an old dog",
        "a flock of gulls",
        "two crows",
        "a hare",
        "a fox",
        "the goats",
        "a robin",
        "the baker's horse",
        "a heron",
        "a family of ducks",
        "a sheepdog",
        "an owl",
    ],
    "ANIMAL_ACT": [
        "watched from the wall",
        "crossed the road without hurrying",
        "slept in the sun",
        "called from the roof",
        "waited by the door",
        "ran off into the hedge",
        "stood perfectly still",
        "followed at a distance",
    ],
    "SOUND": [
        "the rain on the roof",
        "the sea",
        "the wind in the chimney",
        "the church bells",
        "the river",
        "the clock in the hall",
        "voices from the street",
        "the kettle beginning to boil",
        "the gulls",
        "a train far away",
        "the creak of the old floor",
        "someone singing in the next house",
    ],
    "SURFACE": ["table", "windowsill", "shelf", "floor", "doorstep", "bench", "cart", "dresser"],
    "ARRANGE": [
        "all in a row",
        "as if someone had counted them",
        "in no particular order",
        "each one a little different",
        "sorted by colour",
        "half of them broken",
        "neatly stacked",
        "still wet from the rain",
    ],
    "TOPIC": [
        "the summer she was twelve",
        "the house by the sea",
        "her grandmother's garden",
        "the letters",
        "the road to {TOWN}",
        "what the ferryman had said",
        "the winter of the great flood",
        "money",
        "the fair",
        "the people who had left",
        "the old stories",
        "the work that was still to do",
        "the promise they had made",
        "the sound of the sea at night",
        "the years ahead",
    ],
    "PERSON": [
        "the old miller",
        "the ferryman",
        "the schoolteacher",
        "a stranger from the coast",
        "the baker",
        "the postmistress",
        "the doctor",
        "a boy with a dog",
        "two fishermen",
        "the priest",
        "her neighbour",
        "the stationmaster",
        "a woman selling flowers",
        "the blacksmith",
        "his cousin",
    ],
    "FEELING": [
        "felt suddenly very tired",
        "was glad to be home",
        "could not stop smiling",
        "felt a little afraid",
        "wanted to laugh",
        "understood at last",
        "was not sure what to think",
        "felt older than she was",
        "remembered everything at once",
        "decided to say nothing",
        "felt the cold for the first time",
    ],
    "CLAUSE": [
        "the rain stopped",
        "the lamps were lit",
        "the boats came in",
        "the last train had gone",
        "the letter finally arrived",
        "the bell rang for supper",
        "the tide went out",
        "the music ended",
        "the house was quiet again",
        "the snow began to melt",
        "the door closed behind them",
    ],
    "ACTION": [
        "picked up the {THING}",
        "put the {THING} on the table",
        "opened the window",
        "lit the stove",
        "folded the {CLOTH} away",
        "counted the money twice",
        "wrote a short letter",
        "mended the fence",
        "swept the floor",
        "carried the {THING} inside",
        "wiped the glass",
        "made a pot of tea",
        "looked for the {THING}",
        "hung the {THING} by the door",
        "read the letter again",
    ],
    "SIMILE": [
        "a room nobody had entered for years",
        "the first day of a holiday",
        "an old song half remembered",
        "a promise kept",
        "the sea before a storm",
        "a house waiting for its owner",
        "bread fresh from the oven",
        "a question nobody wanted to answer",
        "a clock that had stopped",
    ],
    "QUESTION": [
        "Is it far",
        "Do you think it will rain",
        "Who told you that",
        "Listen, can you hear {SOUND}",
        "Where did you find the {THING}",
        "Why did nobody tell me",
        "Will you come to {TOWN} with me",
        "Have you been to {PLACE} today",
        "What did {PERSON} want",
        "Is the {THING} still there",
    ],
    "QUOTE": [
        "We should go before the tide turns",
        "I kept the letter, you know",
        "Nobody remembers the old road now",
        "Come inside, it is getting cold",
        "Tell me again what she said",
        "I have never seen a {THING} like that",
        "The {OBJ_ADJ} one is mine",
        "We will need the {THING}",
        "It was here when I was a child",
        "You are late again",
        "Leave it where it is",
        "I thought you had gone to {TOWN}",
        "There is bread in the kitchen",
        "Wait for me at {PLACE}",
        "It does not matter now",
        "She always said the sea would keep its secrets",
        "We can mend it tomorrow",
    ],
    "LESSON": [
        "nothing stays lost forever",
        "the road was longer than it looked",
        "kindness is a kind of work",
        "the sea gives back what it takes",
        "some doors are better left closed",
        "every house remembers",
        "it is never too late to begin again",
        "small things matter most",
    ],
}

SENTENCES = [
    "{TIME}, {NAME} {MOVE} to {PLACE}.",
    "{TIME}, {WEATHER}, and {NAME} {MOVE} to {PLACE} with the {THING}.",
    "{PRON_C} {PERCEIVE} a {OBJ_ADJ} {THING} near {PLACE}.",
    "It was {PLACE_ADJ} there, like {SIMILE}.",
    "{NAME} had not seen {COMP} since the winter in {TOWN}.",
    "When {CLAUSE}, {PRON} {FEELING}.",
    "{PRON_C} thought about {TOPIC}, and then about {TOPIC}.",
    "There were {NUMBER} {PLURAL} on the {SURFACE}, {ARRANGE}.",
    "Nobody in {TOWN} knew why the {THING} had been left at {PLACE}.",
    "{PRON_C} {ACTION}, then {ACTION}.",
    "For a long time {PRON} sat without moving, listening to {SOUND}.",
    "{COMP_C} {ACTION}; {PRON} did not say a word.",
    "Outside, {ANIMAL} {ANIMAL_ACT}.",
    "The {THING} was {OBJ_ADJ}, and older than anyone could remember.",
    "{PERSON_C} came by with news from {TOWN}.",
    "{NAME} asked {PERSON} about the {THING}, but nobody could say where it had come from.",
    "The light over {PLACE} turned {LIGHT_ADJ} as the afternoon wore on.",
    "{PRON_C} {FEELING}, though {PRON} could not have said why.",
    "By then {WEATHER}.",
    "{NAME} and {COMP} walked as far as {PLACE} and back again.",
    "{POSS_C} hands were cold, so {PRON} {ACTION}.",
    "At {PLACE} the {DOOR_ADJ} door stood open, and somewhere inside {PERSON} was laughing.",
    "It had been a {YEAR_ADJ} year in {TOWN}, and everyone knew it.",
    "{PRON_C} remembered {TOPIC} and smiled.",
    "{COMP_C} said that {LESSON}.",
    "Nothing moved at {PLACE} except {ANIMAL}.",
    "The road to {TOWN} was {ROAD_ADJ} and {ROAD_ADJ}, and it ran beside the river for most of the way.",
    "{NAME} kept the {THING} in {POSS} pocket for the rest of the day.",
    "Later, {PRON} would say that {LESSON}.",
    "Somebody had left {NUMBER} {PLURAL} by the door of {PLACE}.",
]

DIALOGUE = [
    '"{QUESTION}?" {NAME} {ASK}.',
    '"{QUESTION}?"',
    '"{QUOTE}," said {NAME}.',
    '"{QUOTE}," {COMP} {SAY}, without looking up.',
    '{COMP_C} shook {COMP_POSS} head. "{QUOTE}."',
    '"{QUOTE}." {PRON_C} {ACTION}.',
    '"{QUOTE}," {PRON} {SAY}, "and {LESSON}."',
    '{NAME} waited a moment before answering. "{QUOTE}."',
]

NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "a dozen", "twenty"]
ROMAN = "I II III IV V VI VII VIII IX X XI XII XIII XIV XV XVI XVII XVIII XIX XX".split()
TITLE_WORDS = [
    "Lantern",
    "Letter",
    "Harbour",
    "Orchard",
    "Winter",
    "Ferry",
    "Bridge",
    "Storm",
    "Fair",
    "Key",
    "Road",
    "Mill",
]


def _expand(template: str, ctx: dict[str, str], rng: Rng) -> str:
    def sub(m: re.Match) -> str:
        key = m.group(1)
        cap = key.endswith("_C")
        base = key[:-2] if cap else key
        if base in ctx:
            value = ctx[base]
        elif base == "NUMBER":
            value = rng.pick(NUMBERS)
        elif base == "TOWN":
            value = rng.pick(TOWNS)
        else:
            value = _expand(rng.pick(G[base]), ctx, rng)
        return value[:1].upper() + value[1:] if cap else value

    return re.sub(r"\{([A-Z_]+)\}", sub, template)


def _person(name: str) -> dict[str, str]:
    she = name in WOMEN
    return {
        "NAME": name,
        "PRON": "she" if she else "he",
        "POSS": "her" if she else "his",
        "OBJ": "her" if she else "him",
    }


def _sentence(template: str, ctx: dict[str, str], rng: Rng) -> str:
    s = _expand(template, ctx, rng)
    s = s.replace("made her way", f"made {ctx['POSS']} way")
    s = re.sub(r"\b([Aa]) ([aeiou])", r"\1n \2", s)
    if ctx["PRON"] == "he":
        s = s.replace("the summer she was", "the summer he was").replace("her grandmother", "his grandmother")
        s = s.replace("older than she was", "older than he was")
    return s[:1].upper() + s[1:]


def prose(size: int = PROSE_BYTES, seed: int = 1) -> str:
    """English prose: paragraphs of narrative and dialogue, chapters with headings."""
    rng = Rng(seed)
    people = WOMEN + MEN
    out: list[str] = []
    total = 0
    chapter = 0
    while total < size:
        if chapter < len(ROMAN) and (chapter == 0 or rng.chance(0.04)):
            title = f"{ROMAN[chapter]}. The {rng.pick(TITLE_WORDS)} at {rng.pick(TOWNS)}"
            chapter += 1
            out.append(title)
            total += len(title) + 2
        hero = _person(rng.pick(people))
        other = _person(rng.pick([p for p in people if p != hero["NAME"]]))
        ctx = {**hero, "COMP": other["NAME"], "COMP_POSS": other["POSS"]}
        if rng.chance(0.25):
            lines = []
            for turn in range(rng.between(2, 4)):
                speaker = ctx if turn % 2 == 0 else {**other, "COMP": hero["NAME"], "COMP_POSS": hero["POSS"]}
                lines.append(_sentence(rng.pick(DIALOGUE), speaker, rng))
            paragraphs = lines
        else:
            n = rng.between(3, 7)
            first = _sentence(rng.pick(SENTENCES[:2]), ctx, rng)
            rest = [_sentence(rng.pick(SENTENCES), ctx, rng) for _ in range(n - 1)]
            paragraphs = [" ".join([first, *rest])]
        for p in paragraphs:
            out.append(p)
            total += len(p) + 2
    return "\n\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------
# Python-like source code: small modules of functions and classes that parse as real Python.

NOUNS = (
    "item value record order user account price total count name path line token node edge score weight size entry "
    "batch page event"
).split()
VERBS = (
    "load parse build update compute merge filter format check apply collect render split count find normalise".split()
)
TYPES = ["int", "str", "float", "list[int]", "dict[str, int]", "bool"]


def _ident(rng: Rng) -> str:
    return rng.pick(NOUNS) if rng.chance(0.6) else f"{rng.pick(NOUNS)}_{rng.pick(NOUNS)}"


def _expr(rng: Rng, names: list[str], depth: int = 0) -> str:
    r = rng.below(9 if depth < 2 else 4)
    if r == 0:
        return str(rng.between(0, 100))
    if r in (1, 2, 3):
        return rng.pick(names)
    if r == 4:
        return f"{_expr(rng, names, depth + 1)} {rng.pick(['+', '-', '*', '//', '%'])} {_expr(rng, names, depth + 1)}"
    if r == 5:
        return f"len({rng.pick(names)})"
    if r == 6:
        return f"{rng.pick(['min', 'max', 'abs', 'round'])}({_expr(rng, names, depth + 1)})"
    if r == 7:
        v = rng.pick("xyijk")
        return f"[{v} * {rng.between(2, 9)} for {v} in range({rng.between(2, 20)})]"
    return f'"{rng.pick(NOUNS)}-{{}}".format({rng.pick(names)})'


def _cond(rng: Rng, names: list[str]) -> str:
    op = rng.pick(["<", ">", "==", "!=", "<=", ">="])
    return f"{rng.pick(names)} {op} {rng.between(0, 50)}"


def _block(rng: Rng, names: list[str], indent: int, depth: int) -> list[str]:
    pad = "    " * indent
    lines: list[str] = []
    for _ in range(rng.between(1, 4)):
        r = rng.below(10 if depth < 2 else 5)
        if r < 4:
            target = _ident(rng)
            lines.append(f"{pad}{target} = {_expr(rng, names)}")
            names = [*names, target]
        elif r == 4:
            lines.append(f"{pad}{rng.pick(names)} += {rng.between(1, 9)}")
        elif r in (5, 6):
            lines.append(f"{pad}if {_cond(rng, names)}:")
            lines += _block(rng, names, indent + 1, depth + 1)
            if rng.chance(0.4):
                lines.append(f"{pad}else:")
                lines += _block(rng, names, indent + 1, depth + 1)
        elif r == 7:
            v = rng.pick(["i", "n", "k", rng.pick(NOUNS)])
            lines.append(f"{pad}for {v} in range({rng.between(1, 10)}, {rng.between(11, 99)}):")
            lines += _block(rng, [*names, v], indent + 1, depth + 1)
        elif r == 8:
            lines.append(f"{pad}while {_cond(rng, names)}:")
            lines += _block(rng, names, indent + 1, depth + 1)
            lines.append(f"{pad}    break")
        else:
            lines.append(f"{pad}results.append({_expr(rng, names)})")
    return lines


def _function(rng: Rng, indent: int = 0, method: bool = False) -> list[str]:
    pad = "    " * indent
    name = f"{rng.pick(VERBS)}_{rng.pick(NOUNS)}"
    params = []
    for _ in range(rng.between(1, 3)):
        p = rng.pick(NOUNS)
        if p not in params:
            params.append(p)
    typed = ", ".join(f"{p}: {rng.pick(TYPES[:3])}" for p in params)
    head = f"self, {typed}" if method else typed
    doc = f"{rng.pick(VERBS).capitalize()} the {rng.pick(NOUNS)} from the given {params[0]}."
    lines = [f"{pad}def {name}({head}) -> {rng.pick(TYPES)}:", f'{pad}    """{doc}"""', f"{pad}    results = []"]
    lines += _block(rng, params + ["results"], indent + 1, 0)
    lines.append(f"{pad}    return {rng.pick(['results', params[0], 'len(results)'])}")
    return lines


def _class(rng: Rng) -> list[str]:
    noun = rng.pick(NOUNS)
    name = "".join(w.capitalize() for w in (noun, rng.pick(["store", "parser", "builder", "table", "queue", "cache"])))
    fields = []
    for _ in range(rng.between(1, 3)):
        f = rng.pick(NOUNS)
        if f not in fields:
            fields.append(f)
    lines = [
        f"class {name}:",
        f'    """A {rng.pick(["small", "simple", "lazy", "sorted"])} {noun} {name[len(noun) :].lower()}."""',
        "",
    ]
    args = ", ".join(f"{f}: int = {rng.between(0, 9)}" for f in fields)
    lines.append(f"    def __init__(self, {args}) -> None:")
    lines += [f"        self.{f} = {f}" for f in fields]
    for _ in range(rng.between(1, 3)):
        lines.append("")
        lines += _function(rng, indent=1, method=True)
    return lines


def code(size: int = CODE_BYTES, seed: int = 2) -> str:
    """Python modules: imports, constants, functions and classes with docstrings; valid syntax."""
    rng = Rng(seed)
    parts: list[str] = []
    total = 0
    while total < size:
        mod = f"{rng.pick(NOUNS)}_{rng.pick(['utils', 'models', 'io', 'core', 'helpers', 'tools'])}"
        lines = [f"# {mod}.py", f'"""Helpers for {rng.pick(NOUNS)} and {rng.pick(NOUNS)} handling."""', ""]
        lines += sorted({f"import {rng.pick(['os', 'sys', 'math', 'json', 're', 'itertools'])}" for _ in range(2)})
        lines += ["", f"{rng.pick(NOUNS).upper()}_LIMIT = {rng.between(8, 512)}", ""]
        for _ in range(rng.between(2, 4)):
            lines += ["", *(_class(rng) if rng.chance(0.35) else _function(rng)), ""]
        text = "\n".join(lines).rstrip() + "\n"
        parts.append(text)
        total += len(text) + 2
    return "\n\n".join(parts)


# ------------------------------------------------------------------------------------------------
# Structured corpora that show learning within a minute.


def arithmetic(size: int = ARITHMETIC_BYTES, seed: int = 3) -> str:
    """Lines like ``37+48=85`` and ``91-15=76`` over two-digit numbers."""
    rng = Rng(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        a, b = rng.between(0, 99), rng.between(0, 99)
        line = f"{a}+{b}={a + b}" if rng.chance(0.6) else f"{max(a, b)}-{min(a, b)}={max(a, b) - min(a, b)}"
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines) + "\n"


def _nest(rng: Rng, depth: int) -> str:
    out = []
    for _ in range(rng.between(1, 3)):
        o, c = rng.pick(["()", "[]", "{}"])
        inner = _nest(rng, depth - 1) if depth > 0 and rng.chance(0.55) else ""
        out.append(o + inner + c)
    return "".join(out)


def brackets(size: int = BRACKETS_BYTES, seed: int = 4) -> str:
    """One balanced nesting of (), [] and {} per line, up to six levels deep."""
    rng = Rng(seed)
    lines: list[str] = []
    total = 0
    while total < size:
        line = _nest(rng, rng.between(1, 5))[:80]
        if _balanced(line):
            lines.append(line)
            total += len(line) + 1
    return "\n".join(lines) + "\n"


def _balanced(s: str) -> bool:
    stack = []
    for ch in s:
        if ch in "([{":
            stack.append(ch)
        elif not stack or "([{"[")]}".index(ch)] != stack.pop():
            return False
    return not stack


def generate() -> dict[Path, str]:
    """Every generated file, by path, with its exact contents."""
    text = prose()
    return {
        OUT_DIR / "prose.txt": text,
        PACKAGED_PROSE: text,
        OUT_DIR / "code.txt": code(),
        OUT_DIR / "arithmetic.txt": arithmetic(),
        OUT_DIR / "brackets.txt": brackets(),
    }


def main(argv: list[str] | None = None) -> int:
    """Write the corpora, or with --check report whether the committed ones match."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files on disk instead of writing")
    args = parser.parse_args(argv)
    stale = []
    for path, text in generate().items():
        data = text.encode("utf-8")
        if args.check:
            if not path.is_file() or path.read_bytes() != data:
                stale.append(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            print(f"wrote {path.relative_to(REPO)} ({len(data):,} bytes)")
    for path in stale:
        print(f"differs: {path.relative_to(REPO)}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
