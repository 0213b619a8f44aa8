"""The Content-Security-Policy header: the settings' policy, exactly as django-csp writes it,
built once per process (and again when the settings change); a response with a policy of its
own (django-csp's decorators, a nonce) still gets that one."""

import pytest
from csp.constants import HEADER, HEADER_REPORT_ONLY, NONCE, SELF
from csp.exceptions import CSPNonceError
from csp.utils import build_policy
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from evalhub.core.security import CSPMiddleware


def _directives(header: str) -> set[str]:
    """The policy's directives (django-csp writes them in no fixed order)."""
    return set(header.split("; "))


def _respond(path: str = "/", response: HttpResponse | None = None, *, nonce: bool = False
             ) -> HttpResponse:
    """The response the middleware passes on for a view that answers ``response``."""
    request = RequestFactory().get(path)

    def view(request):
        if nonce:
            str(request.csp_nonce)  # a template asking for the nonce
        return response if response is not None else HttpResponse("ok")

    return CSPMiddleware(view)(request)


def test_a_response_gets_the_settings_policy_as_django_csp_builds_it():
    first, second = _respond(), _respond("/api/v1/rate/1/votes/")
    assert _directives(first[HEADER]) == _directives(second[HEADER]) == _directives(
        build_policy())
    assert "default-src 'self'" in first[HEADER] and "frame-ancestors 'none'" in first[HEADER]
    assert HEADER_REPORT_ONLY not in first  # no report-only policy is configured


def test_the_header_follows_changed_settings():
    _respond()  # built for the project's settings
    policy = {"DIRECTIVES": {"default-src": [SELF], "img-src": [SELF, "https://cdn.example"]}}
    with override_settings(CONTENT_SECURITY_POLICY=policy,
                           CONTENT_SECURITY_POLICY_REPORT_ONLY=policy):
        response = _respond()
        assert _directives(response[HEADER]) == {"default-src 'self'",
                                                 "img-src 'self' https://cdn.example"}
        assert response[HEADER_REPORT_ONLY] == response[HEADER]
    assert _directives(_respond()[HEADER]) == _directives(build_policy())


def test_a_header_the_view_set_is_kept():
    own = HttpResponse("ok")
    own[HEADER] = "default-src 'none'"
    assert _respond(response=own)[HEADER] == "default-src 'none'"


def test_a_response_with_its_own_policy_gets_that_policy():
    updated = HttpResponse("ok")
    updated._csp_update = {"img-src": ["https://cdn.example"]}  # what @csp_update sets
    header = _respond(response=updated)[HEADER]
    assert "https://cdn.example" in header
    assert _directives(header) != _directives(build_policy())
    exempt = HttpResponse("ok")
    exempt._csp_exempt = True  # @csp_exempt()
    assert HEADER not in _respond(response=exempt)


def test_a_nonce_used_by_the_page_is_in_its_header():
    policy = {"DIRECTIVES": {"default-src": [SELF], "script-src": [SELF, NONCE]}}
    with override_settings(CONTENT_SECURITY_POLICY=policy):
        with_nonce, without = _respond(nonce=True), _respond()
    assert "'nonce-" in with_nonce[HEADER]
    assert _directives(without[HEADER]) == {"default-src 'self'", "script-src 'self'"}


@override_settings(CONTENT_SECURITY_POLICY={"DIRECTIVES": {"default-src": [SELF]},
                                            "EXCLUDE_URL_PREFIXES": ["/excluded/"]})
def test_an_excluded_path_gets_no_header():
    assert HEADER not in _respond("/excluded/page")
    assert _respond("/other")[HEADER] == "default-src 'self'"


def test_asking_for_the_nonce_after_the_header_is_written_is_an_error():
    request = RequestFactory().get("/")
    CSPMiddleware(lambda request: HttpResponse("ok"))(request)
    with pytest.raises(CSPNonceError):
        str(request.csp_nonce)
