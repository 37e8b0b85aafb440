"""Suite-wide settings: one torch thread.

On a 2-core machine torch's default thread pool fights any other process (measured here: a
CIFAR-size forward pass 20x slower with 2 threads under load), and one thread makes the
suite's run time predictable.
"""

import torch

torch.set_num_threads(1)
