"""img2recommender's stages, one module each, in the order data flows through them.

images -> faces -> regions -> descriptors / embeddings -> transformer -> classifier
-> recommendations.  ``dataset`` reads labelled training folders.
"""
