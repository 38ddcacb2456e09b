"""Domain words that more than one service uses (DOMAIN.md). One definition each."""

from __future__ import annotations

from enum import StrEnum


class OfferType(StrEnum):
    special_employment = "special_employment"
    mentor_company = "mentor_company"
    utility_work = "utility_work"
    company_internship = "company_internship"
    wage_subsidy = "wage_subsidy"
    youth_education = "youth_education"  # under 30 only
    employment_course_30plus = "employment_course_30plus"  # 30 and over only


MIN_THREAT_LEVEL = 0
MAX_THREAT_LEVEL = 4
