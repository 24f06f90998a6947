"""Training the reader (``qa train-reader``, ``qa average-readers``): above reading, which it
trains and measures, and evaluation, whose SQuAD loading and metrics it uses."""
