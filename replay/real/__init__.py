"""A trace → a real kernel's receive path (netns + veth) → a run directory, like `replay run`.

    rewrite.py     trace frames → a pcap addressed to the namespace's veth (+ per-packet tags)
    netns.py       a private network namespace and veth pair, removed on exit
    receiver.py    the [[app]] consumer run inside the namespace (recvmmsg, SO_TIMESTAMPNS)
    counters.py    /proc counter files → the run.json counters block (before/after diff)
    perfscript.py  `perf script` callchains → samples (comm, dso, symbol, stage, context)
    categories.py  kernel symbols → Cai et al. cost categories and stage ids
    harness.py     all of the above → a run directory (`replay real`)

Everything here needs Linux; the harness needs root. The parsing modules need neither.
"""
