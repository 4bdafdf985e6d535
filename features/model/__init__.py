"""The model: training data, classifiers, evaluation, and the saved PhotoModel."""
