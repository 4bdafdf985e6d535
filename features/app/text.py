"""A photo's answer and a profile in words: recommend.py's text output.  The page says a
face's types and a profile's shares in the same words (its browser tests hold it to them)."""
from features.labels import STYLE_SEEN, type_text, type_word
from features.numbers import fixed
from features.products.recommendations import counted


def format_text(record):
    """A photo's record as text for a person."""
    if record["error"]:
        return f"{record['image']}: error: {record['error']}"
    lines = [f"{record['image']} ({record['width']}x{record['height']}): "
             f"{len(record['faces']) or 'no'} face{'s' * (len(record['faces']) != 1)}"]
    for number, face in enumerate(record["faces"], start=1):
        scores = ", ".join(f"{k} {v}" for k, v in face["score_texts"].items())
        lines.append(f"  face {number} at {face['box']}: {scores} -> "
                     f"{', '.join(face['labels']) or 'no label'}")
        if face["types"]:
            lines.append(f"    types: {format_types(face['types'])}")
        lines.append(f"    {face['headline']}")
        lines += [f"    {product_line(rank, product)}" for rank, product in enumerate(face["recommendations"], start=1)]
    return "\n".join(lines)


def format_types(types):
    """A face's types on one line, as the page shows them: ``eyewear dark 0.93, clear 0.07; hat
    cap 0.81, ...; hat colour navy; beard ...`` (``full beard``: the JSON's key is for
    programs; the hat colour beside the hat's types, not after the beard's styles; each
    probability as :func:`~features.labels.type_text` writes it)."""
    parts = []
    for family, values in types.items():  # the colour where the hat is, or where it is if no hat type
        if family == "hat_colour" and "hat" in types:
            continue
        parts.append(f"hat colour {values}" if family == "hat_colour" else
                     f"{family} " + ", ".join(f"{type_word(k)} {type_text(family, v)}" for k, v in values.items()))
        if family == "hat" and "hat_colour" in types:
            parts.append(f"hat colour {types['hat_colour']}")
    return "; ".join(parts)


def format_profile(summary):
    """The profile as text; its first line counts every photo given (the JSON's ``photos``:
    those analysed)."""
    profile = summary["profile"]
    given = profile["photos"] + profile["failed"]
    unjudged = profile["faces"] - profile["faces_judged"]
    lines = [f"profile: {counted(given, 'photo')} ({profile['failed']} failed), {counted(profile['faces'], 'face')}"
             + (f" ({unjudged} not judged)" if unjudged else ""), f"  {profile['headline']}"]
    # of the photos analysed: under "77 photos (1 failed)", "of photos" read as of the 77; and
    # of the faces judged, likewise
    analysed = f"the {counted(profile['photos'], 'photo')} analysed" if profile["failed"] else "photos"
    judged = f"the {counted(profile['faces_judged'], 'face')} judged" if unjudged else "faces"
    # no share of nothing (None): "0% of the 0 photos analysed" and a mean of no face read as figures
    for label, stats in profile["labels"].items():
        if stats["photo_share"] is not None:
            lines.append(f"  {label:<8} in {share_text(stats['photo_share'])} of {analysed}"
                         + (f", {share_text(stats['face_share'])} of {judged}, mean probability "
                            f"{fixed(stats['mean_probability'], 2)}" if stats["face_share"] is not None else ""))
    for family, shares in profile["types"].items():  # in words, as the faces' types: "full beard"
        # a face may show several beard styles: their shares added up to over 100% unsaid
        overlap = " (styles overlap)" if family == "beard" else ""
        # and none may: four styles at 0% read as no beard, beside a beard's products
        said = (", ".join(f"{type_word(k)} {share_text(v)}" for k, v in shares.items()) if any(shares.values())
                else f"no style at {STYLE_SEEN} or more")
        lines.append(f"  {type_word(family)} among the faces with it{overlap}: {said}")
    lines += [f"  {product_line(rank, product)}" for rank, product in enumerate(profile["recommendations"], start=1)]
    return "\n".join(lines)


def product_line(rank, product):
    """A product as the text lists it, for a face and for a feed: ``1. HAT-002 Navy baseball
    cap ($19.90): <reason>``."""
    return f"{rank}. {product['product_id']} {product['name']} (${product['price']:.2f}): {product['reason']}"


def share_text(share):
    """A share as a whole percentage, or with the decimals (up to four) that keep one over 0 or
    under 1 from reading "0%" or "100%" (1 photo of 251 read "in 0% of photos")."""
    decimals = 0
    while decimals < 4 and 0 < share < 1 and float(fixed(share * 100, decimals)) in (0, 100):
        decimals += 1
    return f"{fixed(share * 100, decimals)}%"
