"""Country names for the region tags an editor adds, so a new tag reads "LY Libya" at once and
not only after the service's next callback. The names are the service's own (pycountry's common
name, with the same few overrides as the service's `country_names`): the plugin does not import
the service, so the rule is repeated here, and a test holds the two equal."""

from __future__ import annotations

from functools import lru_cache

_OVERRIDES = {"XK": "Kosovo", "RU": "Russia", "TR": "Turkey", "PS": "Palestine", "VA": "Vatican City", "CD": "DR Congo",
              "CG": "Republic of the Congo"}
# codes people type that are not ISO 3166-1 alpha-2, with the one they mean
_NEAR_MISSES = {"UK": "GB", "EL": "GR", "EN": "GB", "KO": "XK"}


@lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    import pycountry

    names = {c.alpha_2: getattr(c, "common_name", None) or c.name for c in pycountry.countries}
    names.update(_OVERRIDES)
    return names


def country_name(code: str) -> str | None:
    return country_names().get(code)


def near_miss(code: str) -> str | None:
    """The ISO code meant by a common mistake ("UK" -> "GB"), if any."""
    return _NEAR_MISSES.get(code)
