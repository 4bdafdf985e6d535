"""img2recommender, in four wings; data flows one way, and imports only run down this list.

- ``vision``: photo -> faces (box and landmarks) -> regions -> feature blocks -> one feature
  row per face (``FaceFeatures``), and each face's quality;
- ``model``: labelled training data, the calibrated one-vs-rest classifier, its evaluation,
  model files, and ``PhotoModel``, the saved object that answers for a photo;
- ``products``: the catalog, products ranked per face, the account profile;
- ``app``: one photo end to end for the command line, its worker processes, the Dask
  cluster and annotated pictures.

``labels`` (what is predicted), ``files`` (writes that never leave half a file) and
``stops`` (Ctrl-C and SIGTERM in the command-line tools) sit below all four.
"""
