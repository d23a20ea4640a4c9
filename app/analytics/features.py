"""What the analysers' feature records share: scores held to [-1, 1], and their rounded form for an event."""
from dataclasses import asdict


def clip(value):
    """`value` held to [-1, 1], the range of valence, arousal and dominance."""
    return max(-1.0, min(1.0, value))


class RoundedFeatures:
    """Mixed into a dataclass of measured features: `to_dict` is how an event carries them."""

    def to_dict(self):
        """The fields, floats rounded to three places, for an event's `features` or a whole-file result."""
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
