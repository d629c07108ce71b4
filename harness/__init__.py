"""harness: cross-version reproducibility checks for Keras/TensorFlow models."""

# Nothing heavy may be imported here: this package is mounted into containers
# whose Python may be as old as 3.9 and which hold only numpy and TensorFlow.
__version__ = "0.1.0"
