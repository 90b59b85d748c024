from datetime import timedelta

from django.db import IntegrityError, models, transaction
from django.utils import timezone


class SyncMark(models.Model):
    """A named "this background job is queued" mark, shared by every process.

    Claiming is one conditional UPDATE, so among many web processes exactly one queues
    the job; the mark lapses by itself if the job is lost with a worker.
    """

    name = models.CharField(max_length=50, primary_key=True)
    held_until = models.DateTimeField()

    def __str__(self):
        return self.name

    @classmethod
    def claim(cls, name, seconds):
        """Return True if this caller took the mark (it was free or had lapsed)."""
        now = timezone.now()
        until = now + timedelta(seconds=seconds)
        if cls.objects.filter(name=name, held_until__lt=now).update(held_until=until):
            return True
        if cls.objects.filter(name=name).exists():
            return False  # held (an INSERT would only fail, and log an error on PostgreSQL)
        try:
            with transaction.atomic():
                cls.objects.create(name=name, held_until=until)
        except IntegrityError:
            return False  # held by someone else
        return True

    @classmethod
    def release(cls, name):
        cls.objects.filter(name=name).update(held_until=timezone.now() - timedelta(seconds=1))
