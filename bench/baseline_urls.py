"""The product's URLs plus a minimal Ninja API, the baseline of the API load benchmark.

The minimal endpoints do the same writes as POST /api/meals/parse and the same read as
GET /api/jobs/{id} with nothing else: a hashed token lookup, a meal and a job inserted
in one transaction, and one Redis push after commit.
"""

import json
import uuid

import redis
from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.urls import path
from django.utils import timezone
from ninja import NinjaAPI, Schema
from ninja.security import HttpBearer

from accounts.models import ApiToken, hash_token
from meals.models import Meal
from nutricoach.jobs.models import Job
from nutricoach.urls import urlpatterns as product_urlpatterns

_redis = redis.Redis.from_url(settings.REDIS_URL) if settings.REDIS_URL else None


class Token(HttpBearer):
    def authenticate(self, request, token):
        found = ApiToken.objects.select_related("user").filter(key_hash=hash_token(token)).first()
        return found.user if found else None


minimal = NinjaAPI(auth=Token(), urls_namespace="minimal")


class MealIn(Schema):
    description: str


@minimal.post("/meals", response={202: dict})
def create_meal(request, payload: MealIn):
    now = timezone.now()
    job_id = uuid.uuid4()
    with transaction.atomic():
        meal = Meal.objects.create(
            owner=request.auth, description=payload.description, eaten_at=now, local_date=now.date(),
            parse_job_id=job_id,
        )
        Job.objects.create(
            id=job_id, queue="meal-processing", task="meals.parse_meal", owner=request.auth,
            payload={"meal_id": meal.id}, run_at=now,
        )
        if _redis is not None:
            transaction.on_commit(lambda: _redis.rpush("bench-minimal", json.dumps({"queue": "meal-processing"})))
    return 202, {"meal_id": meal.id, "job_id": str(job_id)}


@minimal.get("/jobs/{job_id}")
def get_job(request, job_id: uuid.UUID):
    job = Job.objects.filter(id=job_id, owner=request.auth).first()
    if job is None:
        raise Http404
    return {"id": str(job.id), "state": job.state, "progress": job.progress}


urlpatterns = [path("minimal/", minimal.urls), *product_urlpatterns]
