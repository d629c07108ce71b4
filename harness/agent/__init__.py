"""The in-container agent: Python 3.9+, standard library, numpy and TensorFlow/Keras only."""
