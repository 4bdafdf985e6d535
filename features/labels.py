"""What img2recommender predicts per face, in the order of every probability column."""

LABELS = ("hat", "beard", "eyewear")
