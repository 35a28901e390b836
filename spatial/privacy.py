"""Masking of complainants' personal data for users who may not see it.

The masks live in the bottom layer so that every page, API and report
masks the same way. Who may see the data unmasked is decided above:
gridmap.roles.can_see_personal_data for maps, gridmap.privacy per ticket.
"""
import re

# A mainland China mobile number: 11 digits starting 13-19, optionally
# after +86 or 86, written whole or split 3-4-4 by spaces or hyphens. The
# digit look-arounds keep longer numbers (ticket or ID numbers) intact.
MOBILE_NUMBER_PATTERN = re.compile(
    r"(?<![0-9])((?:\+?86[\s-]?)?)(1[3-9][0-9])[\s-]?([0-9]{4})[\s-]?([0-9]{4})(?![0-9])"
)

# An 18-character resident identity card number: 17 digits and a digit or X.
RESIDENT_ID_PATTERN = re.compile(r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])")


def mask_name(name):
    """Keep the first character of a name and replace the rest with two asterisks (张三丰 -> 张**).

    Two asterisks stand for any length, so the mask does not reveal how long the name is.
    """
    name = (name or "").strip()
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    return name[0] + "**"


def mask_phone(phone):
    """Mask a phone number field: 138****5678 for mobiles, all but the last four digits otherwise."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    if MOBILE_NUMBER_PATTERN.fullmatch(phone):
        return MOBILE_NUMBER_PATTERN.sub(_mask_mobile_match, phone)

    digit_count = sum(character.isdigit() for character in phone)
    digits_to_mask = max(digit_count - 4, 0)
    masked = []
    for character in phone:
        if character.isdigit() and digits_to_mask > 0:
            masked.append("*")
            digits_to_mask -= 1
        else:
            masked.append(character)
    return "".join(masked)


def mask_personal_numbers(text):
    """Mask mobile numbers and resident ID numbers inside free text such as a ticket's description.

    NOTE: landline numbers (0772-1234567) are left as they are, because in free
    text they cannot be distinguished from house numbers, dates and amounts.
    """
    if not text:
        return text or ""
    text = MOBILE_NUMBER_PATTERN.sub(_mask_mobile_match, text)
    return RESIDENT_ID_PATTERN.sub(lambda match: f"{match.group(1)}********{match.group(2)}", text)


def _mask_mobile_match(match):
    country_prefix, first_three, _middle, last_four = match.groups()
    return f"{country_prefix}{first_three}****{last_four}"
