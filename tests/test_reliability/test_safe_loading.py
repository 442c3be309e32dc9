"""Every path that loads weights is safe (docs/reliability.md, "Safe
loading").

Each entry point gets a payload that creates a marker file when it is
unpickled or run; the test passes only when the loader refuses the file and
the marker does not exist. URLs are served from 127.0.0.1 by the test.
"""
import copy
import os
import os.path as osp
import warnings

import open_clip
import pytest
import torch
from mmengine.model import BaseModule
from mmengine.runner.checkpoint import CheckpointLoader
from payloads import (WritesAFile, save_pickle_payload,
                      save_torchscript_payload, serve_folder)
from reliability_helpers import make_runner

from mmreid_clip.compat import apply_patches
from mmreid_clip.models.backbones import (TINY_ARCHS, build_open_clip,
                                          load_weights_file)
from mmreid_clip.safe_load import (UnsafeCheckpointError, checkpoints_trusted,
                                   read_torchscript_state_dict,
                                   safe_torch_load, torchscript_state_dict)

TRUST = 'MMREID_TRUST_CHECKPOINTS'


@pytest.fixture(autouse=True)
def _untrusted(monkeypatch, tmp_path):
    monkeypatch.delenv(TRUST, raising=False)
    # downloads go to a private torch hub cache
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    apply_patches()


# ----------------------------------------------------------------------
# the trust switch


@pytest.mark.parametrize('value', ['no', 'off', 'FALSE', 'False', '0', '',
                                   ' No '])
def test_trust_switch_off_values_do_not_trust(monkeypatch, tmp_path, value):
    monkeypatch.setenv(TRUST, value)
    assert not checkpoints_trusted()
    marker = tmp_path / 'pwned'
    path = save_pickle_payload(tmp_path / 'evil.pth', marker)
    with pytest.raises(UnsafeCheckpointError, match='evil.pth'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


@pytest.mark.parametrize('value', ['1', 'true', 'YES', 'True', 'on'])
def test_trust_switch_on_values(monkeypatch, value):
    monkeypatch.setenv(TRUST, value)
    assert checkpoints_trusted()


@pytest.mark.parametrize('value', ['n', 'y', 'nope', '2', 'trust'])
def test_trust_switch_rejects_other_values(monkeypatch, tmp_path, value):
    monkeypatch.setenv(TRUST, value)
    marker = tmp_path / 'pwned'
    path = save_pickle_payload(tmp_path / 'evil.pth', marker)
    with pytest.raises(ValueError, match=f'{TRUST}=.*not a yes/no'):
        CheckpointLoader.load_checkpoint(path, map_location='cpu')
    assert not marker.exists()


# ----------------------------------------------------------------------
# URLs: load_from, --resume, init_cfg Pretrained, torchvision://


class _Pretrained(BaseModule):

    def __init__(self, init_cfg) -> None:
        super().__init__(init_cfg=init_cfg)
        self.w = torch.nn.Parameter(torch.zeros(1))


def _load_via(entry: str, url: str, work_dir: str):
    if entry == 'loader':
        return CheckpointLoader.load_checkpoint(url, map_location='cpu')
    if entry in ('load_from', 'resume'):
        runner = make_runner(
            work_dir, load_from=url, resume=entry == 'resume',
            validate=False)
        return runner.load_or_resume()
    if entry == 'init_cfg':
        return _Pretrained(
            dict(type='Pretrained', checkpoint=url)).init_weights()
    raise AssertionError(entry)


@pytest.mark.parametrize('entry', ['loader', 'load_from', 'resume',
                                   'init_cfg'])
def test_url_payload_is_refused(tmp_path, entry):
    served = tmp_path / 'served'
    served.mkdir()
    marker = tmp_path / 'pwned'
    save_pickle_payload(served / 'evil.pth', marker)
    with serve_folder(served) as base:
        with pytest.raises(UnsafeCheckpointError,
                           match=r'http://127\.0\.0\.1.*evil\.pth.*system'):
            _load_via(entry, f'{base}/evil.pth', str(tmp_path / 'work'))
    assert not marker.exists()
    # downloaded into the cache, then refused by the allow-list loader
    assert osp.isfile(tmp_path / 'torch_home/hub/checkpoints/evil.pth')


def test_url_of_plain_weights_still_loads(tmp_path):
    served = tmp_path / 'served'
    served.mkdir()
    torch.save(dict(state_dict={'w': torch.full((1, ), 3.0)}),
               served / 'good.pth')
    with serve_folder(served) as base:
        module = _Pretrained(
            dict(type='Pretrained', checkpoint=f'{base}/good.pth'))
        module.init_weights()
    assert module.w.item() == 3.0


def test_torchvision_scheme_is_refused(tmp_path, monkeypatch):
    import mmengine.runner.checkpoint as mmckpt
    served = tmp_path / 'served'
    served.mkdir()
    marker = tmp_path / 'pwned'
    save_pickle_payload(served / 'resnet.pth', marker)
    with serve_folder(served) as base:
        monkeypatch.setattr(mmckpt, 'get_torchvision_models',
                            lambda: dict(resnet=f'{base}/resnet.pth'))
        with pytest.raises(UnsafeCheckpointError, match='resnet.pth'):
            CheckpointLoader.load_checkpoint('torchvision://resnet')
    assert not marker.exists()


# ----------------------------------------------------------------------
# TorchScript archives (OpenAI's CLIP format)


def _micro_clip():
    torch.manual_seed(0)
    model = open_clip.CLIP(
        **copy.deepcopy(TINY_ARCHS['clip-micro']), quick_gelu=True).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith('bias'):
                p.normal_(0, 0.02)
    return model


def _openai_like_archive(path) -> str:
    """OpenAI's layout: a scripted fp16 CLIP with hyper-parameter buffers
    (as tests/test_models/test_backbones.py builds it)."""
    model = _micro_clip().half()
    for name, value in (('input_resolution', 32), ('context_length', 77),
                        ('vocab_size', 49408)):
        if hasattr(model, name):
            delattr(model, name)
        model.register_buffer(name, torch.tensor(value))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        torch.jit.save(torch.jit.script(model), str(path))
    return str(path)


class _Mixed(torch.nn.Module):
    """Parameters, a persistent and a non-persistent buffer, a plain tensor
    attribute and a view sharing its storage."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.blocks = torch.nn.ModuleList(
            [torch.nn.LayerNorm(4) for _ in range(2)])
        self.register_buffer('steps', torch.arange(6).reshape(2, 3))
        self.register_buffer('cache', torch.ones(2), persistent=False)
        self.scale = torch.nn.Parameter(torch.tensor(2.5,
                                                     dtype=torch.bfloat16))
        self.plain = torch.zeros(3)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


def _bits(tensor):
    """The raw bytes of a tensor: equality is bit-identity (NaN-safe)."""
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8)


def _jit_state_dict(path):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        return dict(torch.jit.load(path, map_location='cpu').state_dict())


@pytest.mark.parametrize('kind', ['openai', 'mixed'])
def test_torchscript_tensors_equal_torch_jit_load(tmp_path, kind):
    if kind == 'openai':
        path = _openai_like_archive(tmp_path / 'ViT-B-16.pt')
    else:
        path = str(tmp_path / 'mixed.pt')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', FutureWarning)
            torch.jit.save(torch.jit.script(_Mixed()), path)
    ours = read_torchscript_state_dict(path)
    ref = _jit_state_dict(path)
    assert list(ours) == list(ref)
    for key, value in ref.items():
        assert ours[key].dtype == value.dtype, key
        assert ours[key].shape == value.shape, key
        assert ours[key].stride() == value.stride(), key
        assert torch.equal(_bits(ours[key]), _bits(value)), key


def test_openai_archive_builds_without_torch_jit_load(tmp_path, monkeypatch):
    path = _openai_like_archive(tmp_path / 'ViT-B-16.pt')
    expected = _jit_state_dict(path)

    def no_jit(*args, **kwargs):
        raise AssertionError('torch.jit.load must not be called')

    monkeypatch.setattr(torch.jit, 'load', no_jit)
    state_dict, openai = load_weights_file(path)
    assert openai
    assert 'input_resolution' not in state_dict
    for key, value in state_dict.items():
        assert torch.equal(value, expected[key]), key
    model = build_open_clip('clip-micro', path)
    assert torch.equal(model.visual.conv1.weight,
                       expected['visual.conv1.weight'].float())


@pytest.mark.parametrize('entry', ['load_weights_file', 'build_open_clip',
                                   'vision_tower'])
def test_torchscript_setstate_payload_does_not_run(tmp_path, entry):
    marker = tmp_path / 'pwned'
    path = save_torchscript_payload(tmp_path / 'ViT-B-16.pt', marker)
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError,
                       match=r'ViT-B-16\.pt.*__setstate__.*convert it once'):
        if entry == 'load_weights_file':
            load_weights_file(path)
        elif entry == 'build_open_clip':
            build_open_clip('clip-micro', path)
        else:
            from mmreid_clip.registry import MODELS
            MODELS.build(
                dict(type='OpenCLIPVisionTransformer', arch='clip-micro',
                     pretrained=path))
    assert not marker.exists()


def test_torchscript_payload_is_real(tmp_path, monkeypatch):
    """The payload does run under torch.jit.load (what the loader used to
    call), and only an explicit opt-in takes that path."""
    marker = tmp_path / 'pwned'
    path = save_torchscript_payload(tmp_path / 'evil.pt', marker)
    monkeypatch.setenv(TRUST, '1')
    state_dict, ran = torchscript_state_dict(path)
    assert ran and marker.exists()
    assert set(state_dict) == {'proj.weight', 'proj.bias', 'evil.w'}


def test_torchscript_foreign_globals_are_refused(tmp_path):
    """An archive whose data pickle names any other global (here a
    hand-edited data.pkl calling os.system) is refused before unpickling
    it."""
    import pickle
    import zipfile
    marker = tmp_path / 'pwned'
    good = _openai_like_archive(tmp_path / 'good.pt')
    evil = str(tmp_path / 'ViT-B-16.pt')
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, 'w') as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith('/data.pkl'):
                data = pickle.dumps(WritesAFile(marker), protocol=2)
            dst.writestr(info, data)
    with pytest.raises(UnsafeCheckpointError, match='posix.system'):
        load_weights_file(evil)
    assert not marker.exists()


# ----------------------------------------------------------------------
# open_clip tags, converters, BERT folders, error messages


def test_open_clip_tag_download_is_read_safely(tmp_path, monkeypatch):
    from open_clip import pretrained as oc_pretrained
    served = tmp_path / 'served'
    served.mkdir()
    marker_pickle, marker_ts = tmp_path / 'pwned1', tmp_path / 'pwned2'
    save_pickle_payload(served / 'evil.pth', marker_pickle)
    save_torchscript_payload(served / 'evil.pt', marker_ts)
    monkeypatch.delenv('HF_HUB_OFFLINE', raising=False)
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))  # open_clip's cache
    with serve_folder(served) as base:
        for name in ('evil.pth', 'evil.pt'):
            monkeypatch.setattr(oc_pretrained, 'get_pretrained_cfg',
                                lambda *a, n=name: dict(url=f'{base}/{n}'))
            with pytest.raises(UnsafeCheckpointError, match=name):
                build_open_clip('ViT-B-32', 'some_tag')
    assert not marker_pickle.exists() and not marker_ts.exists()


def test_converter_loader_refuses_payloads(tmp_path):
    from mmreid_clip.utils.checkpoint_convert import (ConversionError,
                                                      load_official_checkpoint)
    marker = tmp_path / 'pwned'
    for zipped in (True, False):
        path = save_pickle_payload(tmp_path / f'evil{zipped}.pth', marker,
                                   zipfile=zipped)
        with pytest.raises(ConversionError, match='evil'):
            load_official_checkpoint(path)
    assert not marker.exists()


def test_bert_folder_payload_is_refused(tmp_path):
    transformers = pytest.importorskip('transformers')
    from mmreid_clip.registry import MODELS
    folder = tmp_path / 'bert'
    config = transformers.BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, vocab_size=30)
    model = transformers.BertModel(config)
    model.save_pretrained(str(folder), safe_serialization=False)
    marker = tmp_path / 'pwned'
    state = dict(model.state_dict())
    state['payload'] = WritesAFile(marker)
    torch.save(state, folder / 'pytorch_model.bin')
    for name in os.listdir(folder):  # only the pickled weights
        if name.endswith('.safetensors'):
            os.remove(folder / name)
    with pytest.raises(UnsafeCheckpointError, match='pytorch_model.bin'):
        MODELS.build(dict(type='BertTextEncoder', pretrained=str(folder)))
    assert not marker.exists()


def test_refused_getattr_names_the_file(tmp_path):
    from mmengine.logging.history_buffer import HistoryBuffer

    class SneakyGetattr:

        def __reduce__(self):
            return (getattr, (HistoryBuffer, '__init__'))

    path = str(tmp_path / 'sneaky.pth')
    torch.save(dict(x=SneakyGetattr()), path)
    with pytest.raises(UnsafeCheckpointError,
                       match=r'sneaky\.pth.*__init__'):
        safe_torch_load(path)


def test_corrupt_safetensors_names_the_file(tmp_path):
    path = tmp_path / 'clip.safetensors'
    path.write_bytes(b'\x10\x00\x00\x00\x00\x00\x00\x00{not json')
    with pytest.raises(ValueError, match=r'clip\.safetensors'):
        load_weights_file(str(path))


# ----------------------------------------------------------------------
# configs stored inside checkpoints are data


def _export_tool():
    import importlib.util
    path = osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'tools/model_converters/export_open_clip_weights.py')
    spec = importlib.util.spec_from_file_location('export_ocw', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _towers_checkpoint(path, cfg_text: str) -> str:
    clip = _micro_clip()
    state_dict = {}
    for key, value in clip.state_dict().items():
        if key.startswith('visual.'):
            state_dict['image_encoder.' + key] = value
        elif key != 'logit_scale':
            state_dict['text_encoder.' + key] = value
    torch.save(dict(state_dict=state_dict, meta=dict(cfg=cfg_text)),
               str(path))
    return str(path)


@pytest.mark.parametrize('arch_arg', [[], ['--arch', 'clip-micro']])
def test_export_tool_does_not_execute_the_saved_config(tmp_path, arch_arg):
    marker = tmp_path / 'pwned'
    text = (f"import os\nos.system('touch {marker}')\n"
            "model = dict(\n    image_encoder=dict(\n"
            "        arch='clip-micro', img_size=(32, 32),\n"
            f"        pad=__import__('os').system('touch {marker}')),\n"
            "    type='CLIPTextImageReID')\n")
    ckpt = _towers_checkpoint(tmp_path / 'epoch_1.pth', text)
    out = tmp_path / 'clip.pth'
    _export_tool().main([ckpt, str(out)] + arch_arg)
    assert not marker.exists()
    assert sorted(os.listdir(tmp_path)) == ['clip.pth', 'epoch_1.pth']
    loaded = torch.load(out, weights_only=True)
    assert torch.equal(loaded['visual.conv1.weight'],
                       _micro_clip().visual.conv1.weight)


def test_export_tool_failure_keeps_an_existing_output(tmp_path):
    ckpt = _towers_checkpoint(tmp_path / 'epoch_1.pth', 'model = dict()\n')
    out = tmp_path / 'clip.pth'
    out.write_bytes(b'an earlier export')
    with pytest.raises(RuntimeError, match='does not fit'):
        # the wrong arch: verification fails
        _export_tool().main([ckpt, str(out), '--arch', 'clip-tiny'])
    assert out.read_bytes() == b'an earlier export'
    assert sorted(os.listdir(tmp_path)) == ['clip.pth', 'epoch_1.pth']


def test_parse_config_text_reads_data_only():
    from mmreid_clip.utils.checkpoint_check import UNPARSED, parse_config_text
    cfg = parse_config_text(
        "a = dict(x=[1, -2.5, (3, 'b')], y={'k': None})\n"
        "b = open('/etc/passwd').read()\n"
        "c = dict(**a)\n"
        "def f():\n    pass\n")
    assert cfg['a'] == dict(x=[1, -2.5, (3, 'b')], y={'k': None})
    assert cfg['b'] is UNPARSED and cfg['c'] is UNPARSED
    assert parse_config_text('x = (' * 100000 + ')' * 100000) == {}
    assert parse_config_text('not python (') == {}


def test_importing_the_registry_installs_the_safe_loaders(tmp_path):
    """A model built from the registries without the tools (no
    apply_patches call) loads URLs safely too: checked in a fresh
    process."""
    import subprocess
    import sys
    code = ('import mmreid_clip.registry\n'
            'from mmengine.runner.checkpoint import CheckpointLoader\n'
            'from mmreid_clip import safe_load\n'
            'schemes = CheckpointLoader._schemes\n'
            'assert schemes["https://"] is safe_load._load_from_http\n'
            'assert schemes[""] is safe_load._load_from_local\n'
            'assert schemes["torchvision://"] is '
            'safe_load._load_from_torchvision\n')
    subprocess.run([sys.executable, '-c', code], check=True, timeout=300,
                   env=dict(os.environ, OMP_NUM_THREADS='1'))
