"""Quality of drift detection: does the monitor alert when it should, and only then?

The monitor's thresholds were chosen from a few measurements; this evaluation measures what they
do on real text (``python -m bench.drift``), in three parts:

1. Enrichment through the real worker (``enrich``): labelled Debian package descriptions (the
   section is the label, ``labelled``) go through ``stream-trf worker`` on the embedded broker,
   each input record carrying a production prediction from a cheap model trained on the train
   split (``classifier``); the enriched records are cached.
2. Replay through the monitor with a synthetic clock (``replay``): streams that stay stationary,
   switch to sections the reference never saw, or carry corrupted production labels
   (``scenarios``), each with several seeds (``evaluation``), summarized per alert group
   (``figures``, ``summary``) and charted (``chart``); the verdicts and table (``report``).
3. A live check (``live``): a worker with short windows, a stream that switches sections
   half-way, and the time until the alert shows on its ``/metrics`` and in a window record.
"""
