"""HTTP routes of the security service. The service's features arrive with their own issue;
until then it serves its health routes and shares the platform's tables."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1", tags=["security"])
