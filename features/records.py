"""What a photo's record looks like to the outside: recommend.py's JSON Lines and the web API."""


def public(record):
    """The JSON Lines record: per face only box, scores, labels and recommendations.

    Each face's ``attributes`` and ``headline`` stay inside: the profile summary needs them,
    the published record does not.
    """
    keys = ("box", "scores", "labels", "recommendations")
    return {**record, "faces": [{k: face[k] for k in keys} for face in record["faces"]]}
