"""What projects tells the layer above it, without importing it.

The scheduler sits above projects (it imports projects' models, never the other way).
When a batch's work units are written, the scheduler must issue their replicas in the
same transaction; projects sends `workunits_created` and scheduler.batches, connected in
SchedulerConfig.ready, writes them. A receiver that raises rolls the batch back.
"""

from django.dispatch import Signal

# Sent inside the creating transaction, once per chunk of new work units, with
# batch=Batch, workunit_ids=list[int], replicas_each=int (the quorum's target_nresults).
workunits_created = Signal()
