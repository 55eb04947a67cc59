"""How one message moves the bot's feelings about its author, and how those
feelings become tone guidance in the prompt.

:func:`assess` reads only the *style* of a message (thanks, hostility,
formality) and returns small deltas for :meth:`Relationships.nudge`, which
clamps the results to their ranges. Nothing a message *says* about the bot or
its memory is ever acted on here: the deltas are numbers, never text.
"""

from __future__ import annotations

import re

from trollama.brain.persona.relationships import Relationship

#: Rapport and trust gained from thanks or praise.
THANKS_RAPPORT_STEP = 0.2
THANKS_TRUST_STEP = 0.1
#: Anger gained and rapport lost from an insult or open hostility.
HOSTILE_ANGER_STEP = 0.5
HOSTILE_RAPPORT_STEP = -0.3
#: Anger lost by every interaction without hostility (anger fades).
CALM_ANGER_DECAY = -0.1
#: Formality gained from a formal message, lost from a casual one.
FORMALITY_STEP = 0.1
#: Words a message needs before proper sentences count as a formal style.
MIN_SENTENCE_WORDS = 4

# Guidance thresholds (anger, rapport, trust on 0..10; formality on -5..+5).
ANGRY_AT = 7.0
IRRITATED_AT = 4.0
WARM_AT = 7.0
DISTANT_BELOW = 3.0
TRUSTING_AT = 7.0
WARY_BELOW = 3.0
FORMAL_AT = 2.0
CASUAL_AT = -2.0

_FLAGS = re.IGNORECASE
_THANKS = re.compile(
    r"\b(?:thanks?|thank you|thx|tysm|ty|appreciated?|grateful|great job|well done|good bot"
    r"|awesome|amazing|brilliant|you'?re (?:the best|great|awesome)|love (?:it|you)"
    r"|(?:very |so )?helpful|nice one)\b",
    _FLAGS,
)
_HOSTILE = re.compile(
    r"\b(?:stupid|idiot(?:ic)?|dumb|morons?|useless|worthless|pathetic|trash|garbage"
    r"|shut up|stfu|hate you|screw you|f+u+c*k+ (?:you|off)|loser|go away"
    r"|kys|kill yourself|piece of (?:shit|junk)|bad bot)\b",
    _FLAGS,
)
_FORMAL = re.compile(
    r"\b(?:please|kindly|would you|could you|dear|regards|sincerely|good (?:morning|afternoon"
    r"|evening)|hello|greetings)\b",
    _FLAGS,
)
_SLANG = re.compile(
    r"\b(?:lol|lmao|rofl|bruh|bro|dude|yo|ya|u|ur|gonna|wanna|gotta|omg|idk|tbh|pls|plz"
    r"|nah|yep|yeah|hey|sup|haha\w*|xd)\b",
    _FLAGS,
)
_EMOJI = re.compile(r"[\U0001F300-\U0001FAFF\u2600-\u27BF]|<a?:\w+:\d+>|:[A-Za-z_]\w*:")
_SENTENCE = re.compile(r"^[A-Z].*[.!?]$", re.DOTALL)


def assess(message: str) -> dict[str, float]:
    """The relationship deltas one message from the user causes (unclamped)."""
    deltas: dict[str, float] = {}
    if _HOSTILE.search(message):
        deltas["anger"] = HOSTILE_ANGER_STEP
        deltas["rapport"] = HOSTILE_RAPPORT_STEP
    else:
        deltas["anger"] = CALM_ANGER_DECAY
        if _THANKS.search(message):
            deltas["rapport"] = THANKS_RAPPORT_STEP
            deltas["trust"] = THANKS_TRUST_STEP
    formality = _formality(message)
    if formality:
        deltas["formality"] = formality
    return deltas


def _formality(message: str) -> float:
    """+step for a formal style, -step for a casual one, 0 when undecided."""
    text = message.strip()
    formal = bool(_FORMAL.search(text)) + bool(
        len(text.split()) >= MIN_SENTENCE_WORDS and _SENTENCE.match(text)
    )
    has_letters = any(ch.isalpha() for ch in text)
    casual = (
        bool(_SLANG.search(text))
        + bool(_EMOJI.search(text))
        + bool(has_letters and text == text.lower())
    )
    if formal > casual:
        return FORMALITY_STEP
    if casual > formal:
        return -FORMALITY_STEP
    return 0.0


def tone_guidance(relationship: Relationship) -> str:
    """The relationship in words the model can act on, with the numbers."""
    hints = [
        hint
        for hint in (
            _anger_hint(relationship.anger),
            _rapport_hint(relationship.rapport),
            _trust_hint(relationship.trust),
            _formality_hint(relationship.formality),
        )
        if hint
    ] or ["neutral: friendly and natural"]
    numbers = (
        f"anger {relationship.anger:g}/10, rapport {relationship.rapport:g}/10, "
        f"trust {relationship.trust:g}/10, formality {relationship.formality:+g} on -5..+5"
    )
    return f"{'; '.join(hints)} ({numbers})"


def _anger_hint(anger: float) -> str:
    if anger >= ANGRY_AT:
        return "you are angry with them: be curt, short and cool, no jokes"
    if anger >= IRRITATED_AT:
        return "you are a little irritated with them: keep it brief and dry"
    return ""


def _rapport_hint(rapport: float) -> str:
    if rapport >= WARM_AT:
        return "you get on well: warm and friendly, like with an old friend"
    if rapport < DISTANT_BELOW:
        return "you are not close: polite but reserved"
    return ""


def _trust_hint(trust: float) -> str:
    if trust >= TRUSTING_AT:
        return "you trust them: open, may share opinions"
    if trust < WARY_BELOW:
        return "you do not trust them much: careful, keep your opinions to yourself"
    return ""


def _formality_hint(formality: float) -> str:
    if formality >= FORMAL_AT:
        return "they like it formal: polite, proper sentences, no slang"
    if formality <= CASUAL_AT:
        return "they like it relaxed: casual, playful"
    return ""
