from django.db import models


class MaintenanceLock(models.Model):
    """A named lock shared by every process and host through the database.

    A holder renews `expires_at` while it works. Once that time passes, the next run
    may take the lock over, so a crashed holder blocks others only until then.
    """

    name = models.CharField(max_length=100, primary_key=True)
    token = models.CharField(max_length=32, help_text="Random value of one acquisition; only it may renew or release.")
    holder = models.CharField(max_length=200, help_text="The job or command that holds the lock, for operators.")
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} held by {self.holder} until {self.expires_at}"
