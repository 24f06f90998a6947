"""Speed, memory and scale benchmarks, side by side with Haystack (``python benchmarks/run.py``)."""
