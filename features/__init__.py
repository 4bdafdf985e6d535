"""img2recommender's stages, one module each, in the order data flows through them.

images -> faces -> regions -> descriptors, embeddings -> transformer (one feature row per
face) -> classifier (calibrated one-vs-rest) -> recommendations -> annotation.
Around them: dataset (labelled training folders), evaluation and plots (cross-validation),
model_io (checksummed model files), analysis (one photo end to end, for recommend.py).
"""
