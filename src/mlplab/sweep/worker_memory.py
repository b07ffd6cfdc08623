"""Imported first by every process that trains a sweep's units (the first name of
:data:`mlplab.sweep.worker.WORKER_PRELOAD`, so before pyarrow in the forkserver, whose
only way to prepare its workers is importing): Arrow's allocations come from the C
library's malloc, unless ``ARROW_DEFAULT_MEMORY_POOL`` already names a pool.

Arrow's default pool (mimalloc in this pyarrow) keeps what encoding a unit's run files
freed rather than handing it back: a worker of a 10,000-run sweep grew from 400 MB to
560-660 MB unit after unit, against a flat 400 MB with the system pool, in the same
encoding time (1000 runs: 1.9-2.2 s summed over the workers either way). Arrow reads the
variable once, when its pool is first used: a process that imported pyarrow before this
(a Ray worker that ran other Arrow work) keeps its pool.
"""

import os

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
