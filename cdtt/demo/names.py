"""Made-up but plausible Vietnamese names for the replay and the simulator, from a seeded RNG."""

from __future__ import annotations

import random

FAMILY = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương",
    "Lý", "Hà", "Đinh", "Lương", "Nông", "Triệu", "Lò", "Vi", "Lăng", "Sầm", "Giàng", "Phan",
)  # fmt: skip
MIDDLE = {
    "male": ("Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Xuân", "Thanh", "Ngọc", "Đình"),
    "female": ("Thị", "Thị", "Thu", "Ngọc", "Thanh", "Kim", "Hồng", "Minh", "Phương", "Mai"),
}
GIVEN = {
    "male": (
        "An", "Bình", "Cường", "Dũng", "Duy", "Hải", "Hiếu", "Hùng", "Khánh", "Long", "Nam",
        "Phong", "Quân", "Sơn", "Thắng", "Toàn", "Trung", "Tuấn", "Việt", "Vinh", "Chiến", "Lộc",
    ),
    "female": (
        "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hoa", "Hương", "Lan", "Linh", "Mai", "Nga",
        "Ngân", "Nhung", "Phương", "Thảo", "Trang", "Tuyết", "Vân", "Yến", "Huyền", "Diệp",
    ),
}  # fmt: skip
VILLAGE_KINDS = ("thôn", "thôn", "thôn", "bản", "tổ dân phố")
VILLAGE_WORDS = (
    "Đồng Tâm", "Khe Lếch", "Làng Chạp", "Nà Hẩu", "Bản Tát", "Khe Trúc", "Đồng Bang",
    "Làng Câu", "Ngòi Kèn", "Khe Cam", "Thác Cá", "Đồng Song", "Nà Lay", "Khuổi Ký", "Bó Héo",
    "Phai Xá", "Pác Cáp", "Nà Pàn", "Tân Lập", "Tân Thành", "Hòa Bình", "Phú Hưng", "Thạnh Mỹ",
    "An Phú", "Trung Phước", "Phước Sơn", "Bình Yên", "Hạ Sơn", "Thượng Lâm", "Cốc Lùng",
)  # fmt: skip


def person_name(rng: random.Random) -> str:
    gender = rng.choice(("male", "female"))
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE[gender])} {rng.choice(GIVEN[gender])}"


def village_names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """`count` distinct (name, kind) pairs for the villages of one commune."""
    words = rng.sample(VILLAGE_WORDS, k=min(count, len(VILLAGE_WORDS)))
    villages = []
    for index in range(count):
        kind = rng.choice(VILLAGE_KINDS)
        word = words[index] if index < len(words) else str(index + 1)
        villages.append((f"{kind[0].upper()}{kind[1:]} {word}", kind))
    return villages
