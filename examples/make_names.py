"""Writes names.txt, the training text of tinygpt.py: 4,000 made-up names, one a line.

    python examples/make_names.py      # rewrites examples/names.txt (the same file each time)

The names are generated here, from a small syllable grammar and a fixed seed, so the
text has no author and no licence to worry about; what a model can learn from it is
the grammar: which letters start a name, which follow one another, how names end.
"""
import argparse
import os
import random

ONSETS = ["b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m",
          "n", "p", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z"]
VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "o", "ae", "ei", "ia", "ou"]
CODAS = ["", "", "", "", "n", "l", "r", "s", "m", "th", "nd", "rk"]
ENDINGS = ["", "", "a", "ia", "on", "el", "is", "an", "y", "en", "ar", "ine"]


def name(rng):
    parts = []
    for k in range(rng.choice([1, 2, 2, 2, 3])):
        onset = rng.choice(ONSETS) if k == 0 or rng.random() < 0.8 else ""
        parts.append(onset + rng.choice(VOWELS) + rng.choice(CODAS))
    word = "".join(parts) + rng.choice(ENDINGS)
    return word[:14]


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Write examples/names.txt, tinygpt.py's training text: 4,000 made-up "
                    "names from a syllable grammar and a fixed seed (the same file each time).")
    parser.parse_args(argv)
    rng = random.Random(0)
    names, seen = [], set()
    while len(names) < 4000:
        w = name(rng)
        if 3 <= len(w) and w not in seen:
            seen.add(w)
            names.append(w)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "names.txt")
    with open(path, "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"wrote {len(names)} names to {path}")


if __name__ == "__main__":
    main()
