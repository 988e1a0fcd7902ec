"""The public API: what `newsletter` exports, held to a list so that a change to it is deliberate."""

from __future__ import annotations

import inspect
import subprocess
import sys

import newsletter
from newsletter import errors

PUBLIC = {
    "Newsletter", "Config", "load_config",
    "NewsletterError", "ConfigError", "MissingConfigFile", "MissingSecretKey", "StoreError", "SchemaOutOfDate",
    "InvalidAddress", "InvalidField", "UnknownList", "UnknownSubscriber", "InvalidToken", "ImportFileError",
    "ContentError", "LintFailed", "MissingVariant", "DeliveryError", "InvalidVerp", "MailboxError", "DkimError",
    "UnknownIssue", "UnknownCampaign", "CampaignStateError", "CampaignContentMissing", "NoAudience", "CampaignContentChanged",
    "SegmentError", "UnknownSegment", "ApiAccessDenied", "WebhookRefused",
    "UnknownSchedule", "ScheduleStateError",
    "LoginRefused", "LoginThrottled", "PermissionDenied", "UnknownStaffMember", "StaffMemberExists", "StaffStateError",
    "UnknownDraft", "DraftExists", "EditConflict", "ApprovalRequired", "CatchUpUnavailable",
    "ArchiveError", "StoreNotEmpty", "SuppressedAddress", "NotSuppressed", "ListArchived",
}


def test_the_public_names_are_exactly_these():
    assert set(newsletter.__all__) == PUBLIC
    for name in newsletter.__all__:
        assert getattr(newsletter, name) is not None


def test_every_error_of_the_library_is_public_and_under_one_base():
    raised = {name for name, value in vars(errors).items()
              if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == errors.__name__}
    assert raised <= set(newsletter.__all__)
    assert all(issubclass(getattr(newsletter, name), newsletter.NewsletterError) for name in raised)


def test_the_error_tree_is_exported_as_errors_all_names_it():
    """`newsletter` re-exports `errors.__all__`; that list names every error class of the module."""
    defined = {name for name, value in vars(errors).items()
               if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == errors.__name__}
    assert set(errors.__all__) == defined
    assert set(newsletter.__all__) == {"Newsletter", "Config", "load_config", *errors.__all__}
    assert all(getattr(newsletter, name) is getattr(errors, name) for name in errors.__all__)


def test_naming_a_configuration_or_an_error_loads_no_database_driver():
    code = "import sys, newsletter; newsletter.Config; newsletter.ContentError; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    assert newsletter.Newsletter.__module__ == "newsletter.installation"
