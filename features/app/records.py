"""What a photo's record looks like to the outside: recommend.py's JSON Lines and the web API."""

#: The keys of each face in a published record; the ``headline`` stays inside (the text
#: output and the profile use it, the published record does not).
PUBLIC_FACE_KEYS = ("box", "scores", "labels", "types", "quality", "recommendations")


def public(record):
    """The JSON Lines record: per face only :data:`PUBLIC_FACE_KEYS`."""
    return {**record, "faces": [{k: face[k] for k in PUBLIC_FACE_KEYS} for face in record["faces"]]}
