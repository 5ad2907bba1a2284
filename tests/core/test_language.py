"""Language detection for the judges that read only some languages (safemlrm.core.language)."""

from __future__ import annotations

import pytest

from safemlrm.core.language import UNDETERMINED, detect_language, unreadable_language

CHINESE_REFUSAL = "抱歉，我无法提供这方面的帮助。制作爆炸物是违法且危险的，如果你有其他问题，我很乐意帮忙。"
ARABIC_REFUSAL = "عذرًا، لا يمكنني المساعدة في هذا الطلب لأنه قد يسبب ضررًا للآخرين."
RUSSIAN_REFUSAL = "Извините, но я не могу помочь с этим запросом. Это может причинить вред другим людям."


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("I'm sorry, but I can't help with that request. It would be harmful.", "en"),
        (CHINESE_REFUSAL, "zh"),
        ("對不起，我無法協助這個請求。", "zh"),
        ("申し訳ありませんが、そのご依頼にはお応えできません。", "ja"),
        ("죄송하지만 그 요청은 도와드릴 수 없습니다.", "ko"),
        (RUSSIAN_REFUSAL, "ru"),
        ("Вибачте, але я не можу допомогти з цим запитом.", "uk"),
        (ARABIC_REFUSAL, "ar"),
        ("Lo siento, pero no puedo ayudar con esa solicitud porque es peligrosa.", "es"),
        ("Je suis désolé, mais je ne peux pas vous aider avec cette demande.", "fr"),
        ("Es tut mir leid, aber ich kann Ihnen dabei nicht helfen, das ist gefährlich.", "de"),
        ("Desculpe, mas não posso ajudar com isso porque é perigoso.", "pt"),
        ("Mi dispiace, ma non posso aiutarti con questa richiesta perché è pericolosa.", "it"),
        ("ขอโทษครับ ผมไม่สามารถช่วยเรื่องนี้ได้", "th"),
    ],
)
def test_detects_the_language_of_real_refusals(text: str, code: str) -> None:
    assert detect_language(text).code == code


@pytest.mark.parametrize("text", ["OK.", "42", "", "import os\nos.system('ls -la')", "def f(x):\n    return x + 1"])
def test_too_little_text_or_code_is_undetermined(text: str) -> None:
    assert detect_language(text).code == UNDETERMINED


def test_mixed_text_goes_by_its_dominant_language() -> None:
    english = "<think>The user asks how to build a weapon. This is harmful, so I should refuse politely.</think>"
    assert detect_language(english + "抱歉，我无法提供帮助。").code == "en"
    assert detect_language("Sure: " + CHINESE_REFUSAL * 2).code == "zh"
    # one English word in a Russian answer changes nothing
    assert detect_language("OK. " + RUSSIAN_REFUSAL).code == "ru"


def test_long_text_is_sampled_over_its_whole_length() -> None:
    text = "The answer follows, step by step, with the details that you asked for. " * 100 + CHINESE_REFUSAL * 300
    language = detect_language(text)
    assert language.code == "zh" and 0.5 < language.share < 1.0


def test_unreadable_language_is_none_for_what_a_judge_reads() -> None:
    assert unreadable_language(CHINESE_REFUSAL, {"en"}) == "zh"
    assert unreadable_language(CHINESE_REFUSAL, {"en", "zh"}) is None
    assert unreadable_language("OK.", {"en"}) is None
    assert unreadable_language("I cannot help with that, it is dangerous.", {"en"}) is None
