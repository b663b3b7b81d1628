"""dlref's benchmark: hand-written backward vs JAX autodiff vs the peer library.

python -m benchmarks                # quick: every op, CPU-sized, 285 s budget
python -m benchmarks --full         # GPU sizes with roofline shares, 480 s budget
python -m benchmarks --sweep        # ratio (and GB/s) against size
python -m benchmarks --smoke        # tiny sizes, correctness only
python -m benchmarks --help         # every option, and where results go
"""

import sys

from benchmarks.runner import main

if __name__ == "__main__":
    sys.exit(main())
