"""The settings of :class:`~.reid_metric.ReIDMetric`: the named protocol
presets of the ReID benchmarks (:attr:`ReIDSettingsMixin.PRESETS`: LTCC,
PRCC, VC-Clothes, DeepChange, Market-style), and the validation that
fills in every key of a setting.
"""
import copy
from typing import Dict, List, Sequence, Union

from .args import as_int
from .reid_junk import MODES

_SETTING_KEYS = ('name', 'query', 'gallery', 'mode', 'cameras', 'camera_key')
_CAMERA_KEYS = ('camid', 'tracklet_id')
_DEFAULT_SETTING = dict(
    query='query',
    gallery='gallery',
    mode='general',
    cameras=None,
    camera_key='camid')


class ReIDSettingsMixin:
    """Presets and settings validation of :class:`~.reid_metric.ReIDMetric`
    (class methods; a subclass may extend :attr:`PRESETS`).
    """

    #: Named settings of the CC-ReID benchmarks (see the class doc).
    PRESETS: Dict[str, List[dict]] = {
        'ltcc': [
            dict(name='general', mode='general'),
            dict(name='cc', mode='cloth-changing'),
        ],
        'prcc': [
            dict(
                name='sc', query='query_sc', gallery='gallery',
                mode='general'),
            dict(
                name='cc', query='query_cc', gallery='gallery',
                mode='general'),
        ],
        'vc_clothes': [
            dict(name='general', mode='general'),
            dict(name='sc', mode='general', cameras=[2, 3]),
            dict(name='cc', mode='general', cameras=[3, 4]),
        ],
        'deepchange': [
            dict(name='general', mode='general', camera_key='tracklet_id'),
        ],
        'market': [dict(name='general', mode='general')],
        # CLIP-ReID's image ReID benchmarks (datasets/reid): the standard
        # rule. Their loaders already left the junk images (pid -1) out and
        # keep Market-1501's distractors (pid 0) in the gallery, where no
        # query shares their pid: they rank as ordinary negatives.
        'market1501': [dict(name='general', mode='general')],
        'msmt17': [dict(name='general', mode='general')],
        'dukemtmc': [dict(name='general', mode='general')],
        'occluded_duke': [dict(name='general', mode='general')],
    }

    @classmethod
    def preset(cls, name: str) -> List[dict]:
        """A copy of the settings of preset ``name`` (see :attr:`PRESETS`).

        Raises:
            KeyError: an unknown name (the message lists the presets).
        """
        if name not in cls.PRESETS:
            raise KeyError(f'unknown ReIDMetric preset {name!r}; available: '
                           f'{sorted(cls.PRESETS)}')
        return copy.deepcopy(cls.PRESETS[name])

    @classmethod
    def resolve_settings(cls, settings: Union[str,
                                              Sequence[dict]]) -> List[dict]:
        """Validated settings (a list of dicts or a preset name) with every
        key filled in, as the metric evaluates them."""
        return cls._check_settings(settings)

    @classmethod
    def _check_settings(cls, settings: Union[str,
                                             Sequence[dict]]) -> List[dict]:
        """Validated settings with every key filled in."""
        if isinstance(settings, str):
            settings = cls.preset(settings)
        if isinstance(settings, dict) or not settings:
            raise ValueError('settings must be a non-empty list of dicts or '
                             f'a preset name {sorted(cls.PRESETS)}, got '
                             f'{settings!r}')
        out, names = [], set()
        for i, raw in enumerate(settings):
            if not isinstance(raw, dict):
                raise TypeError(f'settings[{i}] must be a dict, got {raw!r}')
            unknown = set(raw) - set(_SETTING_KEYS)
            if unknown:
                raise ValueError(f'settings[{i}] has unknown keys '
                                 f'{sorted(unknown)}; allowed: '
                                 f'{list(_SETTING_KEYS)}')
            if not raw.get('name') or not isinstance(raw['name'], str):
                raise ValueError(f'settings[{i}] needs a `name` (str), got '
                                 f'{raw!r}')
            s = {'name': raw['name'], **_DEFAULT_SETTING, **raw}
            name = s['name']
            if name in names:
                raise ValueError(f'setting name {name!r} is used twice')
            names.add(name)
            if s['mode'] not in MODES:
                raise ValueError(f'setting {name!r}: mode must be one of '
                                 f'{MODES}, got {s["mode"]!r}')
            if s['camera_key'] not in _CAMERA_KEYS:
                raise ValueError(f'setting {name!r}: camera_key must be one '
                                 f'of {_CAMERA_KEYS}, got '
                                 f'{s["camera_key"]!r}')
            if s['cameras'] is not None:
                if isinstance(s['cameras'], (int, str)) or not s['cameras']:
                    raise ValueError(f'setting {name!r}: cameras must be '
                                     'None or a non-empty list of camids, '
                                     f'got {s["cameras"]!r}')
                s['cameras'] = [
                    as_int(c, f'setting {name!r} camera')
                    for c in s['cameras']
                ]
            out.append(s)
        return out
