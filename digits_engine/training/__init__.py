"""Training, run only inside worker processes (it imports TensorFlow)."""
