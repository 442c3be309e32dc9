"""model_zoo.md is generated from the metafiles and never drifts from them."""
import glob
import os.path as osp
import re
import shutil

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402


def _tool():
    return load_tool('.dev_scripts/gen_model_zoo.py')


def _section(page, heading):
    start = page.index(heading)
    end = page.find('\n## ', start + len(heading))
    return page[start:] if end < 0 else page[start:end]


def test_committed_page_is_the_generated_one():
    page = _tool().generate(ROOT)
    with open(osp.join(ROOT, 'model_zoo.md')) as f:
        committed = f.read()
    assert committed == page, ('model_zoo.md differs from the metafiles: '
                               'run python .dev_scripts/gen_model_zoo.py')
    assert _tool().main(['--check']) == 0


def test_every_config_is_listed_and_every_link_resolves():
    page = _tool().generate(ROOT)
    for path in sorted(glob.glob(osp.join(ROOT, 'configs/*/metafile.yml'))):
        for model in yaml.safe_load(open(path))['Models']:
            assert osp.isfile(osp.join(
                ROOT,
                model['Config'])), (f'{path}: {model["Config"]} is missing')
            assert f']({model["Config"]})' in page, model['Name']
    links = re.findall(r'\]\(([^)]+)\)', page)
    local = [t for t in links if not t.startswith(('http://', 'https://'))]
    assert local
    for target in local:
        assert osp.exists(osp.join(ROOT, target)), target


def test_paper_and_measured_numbers_are_apart():
    page = _tool().generate(ROOT)
    tipr = _section(page, '## Text-to-image person retrieval')
    paper = _section(tipr, '### Reported by the papers')
    paper = paper[:paper.index('### Measured')]
    measured = _section(tipr, '### Measured by this implementation')
    # the labels and numbers of the hand-written page this one replaced
    assert ('| CLIP ViT-B/16 baseline | [clip-baseline_vit-b16_cuhk-pedes.py]'
            '(configs/baselines/clip-baseline_vit-b16_cuhk-pedes.py) | '
            'CUHK-PEDES | paper (IRRA README, CLIP ViT-B/16 fine-tuned) | '
            '68.19 | 86.47 | 91.47 | 61.12 | 44.86 | not released |') in paper
    assert ('| CFine (ViT-B/16 + BERT) | [cfine_vit-b16-bert_rstpreid.py]'
            '(configs/cfine/cfine_vit-b16-bert_rstpreid.py) | RSTPReid | '
            'paper | 50.55 | 72.50 | 81.60 | – | – | not released |') in paper
    assert 'SynthPedes' not in paper
    assert 'Measured on SynthPedes v1.0.0, seed 0' in measured
    assert 'not a paper benchmark' in measured
    assert ('| SynthPedes | test | 10.00 | 31.92 | 46.42 | 12.84 | 6.44 | '
            'not released |') in measured
    assert 'CFine tiny (shared init)' in measured
    assert 'No checkpoint is released yet' in page


def _copy_min_repo(tmp_path):
    """The baseline metafile, its README and configs in a scratch root."""
    root = tmp_path / 'repo'
    src = osp.join(ROOT, 'configs', 'baselines')
    dst = root / 'configs' / 'baselines'
    dst.mkdir(parents=True)
    for name in ['metafile.yml', 'README.md'] + [
            osp.basename(p) for p in glob.glob(osp.join(src, '*.py'))
    ]:
        shutil.copy(osp.join(src, name), dst / name)
    return root


NEW_METAFILE = '''Collections:
  - Name: NewReID
    Paper: {Title: A New ReID, URL: 'https://example.org/paper'}
    README: configs/newreid/README.md
Models:
  - Name: newreid_tiny
    In Collection: NewReID
    Config: configs/newreid/newreid_tiny.py
    Results:
      - Task: Cloth-Changing Person ReID
        Dataset: PRCC (cloth-changing)
        Source: paper
        Metrics: {R@1: 70.4, mAP: 63.7}
      - Task: Cloth-Changing Person ReID
        Dataset: SynthCC
        Source: measured (this implementation)
        Data: SynthCC v0, seed 1 (generated)
        Split: test
        Metrics: {R@1: 12.5, mAP: 10}
    Weights: https://example.org/newreid_tiny.pth
  - Name: newreid_ablation
    In Collection: NewReID
    Config: configs/newreid/newreid_tiny.py
    Results: []
    Weights: not released
'''


def test_a_new_metafile_is_picked_up(tmp_path):
    tool = _tool()
    root = _copy_min_repo(tmp_path)
    new = root / 'configs' / 'newreid'
    new.mkdir()
    (new / 'README.md').write_text('# NewReID\n')
    (new / 'newreid_tiny.py').write_text('model = dict()\n')
    (new / 'metafile.yml').write_text(NEW_METAFILE)
    out = str(root / 'model_zoo.md')
    assert tool.main(['--root', str(root), '--check']) == 1  # no page yet
    assert tool.main(['--root', str(root)]) == 0
    assert tool.main(['--root', str(root), '--check']) == 0
    page = open(out).read()
    section = _section(page, '## Cloth-changing person ReID')
    assert ('| newreid_tiny | [newreid_tiny.py](configs/newreid/'
            'newreid_tiny.py) | PRCC (cloth-changing) | paper | 70.40 | '
            '63.70 | [download](https://example.org/newreid_tiny.pth) |'
            ) in section
    assert 'Measured on SynthCC v0, seed 1 (generated).' in section
    assert '| SynthCC | test | 12.50 | 10 |' in section
    assert 'Not measured yet' not in section
    assert ('- NewReID: [newreid_tiny.py](configs/newreid/newreid_tiny.py)'
            ) in page
    # released weights: no "nothing is released" claim any more
    assert 'No checkpoint is released yet' not in page
    # editing a metafile makes the committed page stale
    (new / 'metafile.yml').write_text(NEW_METAFILE.replace('70.4', '70.5'))
    assert tool.main(['--root', str(root), '--check']) == 1


@pytest.mark.parametrize('edit, message', [
    (('Source: measured (this implementation)\n        Data: SynthCC v0, '
      'seed 1 (generated)\n', 'Source: measured (this implementation)\n'),
     'a measured result must say what it was measured on'),
    (('Source: paper\n', 'Source: a blog\n'),
     'Source must start with "paper" or "measured"'),
    (('Config: configs/newreid/newreid_tiny.py\n    Results:\n      - Task',
      'Config: configs/newreid/nope.py\n    Results:\n      - Task'),
     'Config configs/newreid/nope.py is missing'),
    (('In Collection: NewReID\n    Config: configs/newreid/newreid_tiny.py\n'
      '    Results:\n      - Task',
      'In Collection: Nobody\n    Config: configs/newreid/newreid_tiny.py\n'
      '    Results:\n      - Task'), "In Collection 'Nobody'"),
    (('Weights: https://example.org/newreid_tiny.pth', 'Weights: soon'),
     "Weights must be 'not released'"),
    (('{R@1: 12.5, mAP: 10}', '{R@1: high}'), 'Metrics must map names'),
])
def test_schema_errors_name_the_file_and_entry(tmp_path, capsys, edit,
                                               message):
    tool = _tool()
    root = _copy_min_repo(tmp_path)
    new = root / 'configs' / 'newreid'
    new.mkdir()
    (new / 'README.md').write_text('# NewReID\n')
    (new / 'newreid_tiny.py').write_text('model = dict()\n')
    assert NEW_METAFILE.count(edit[0]) == 1, edit[0]
    (new / 'metafile.yml').write_text(NEW_METAFILE.replace(*edit))
    with pytest.raises(tool.MetafileError, match=re.escape(message)) as err:
        tool.generate(str(root))
    assert 'configs/newreid/metafile.yml' in str(err.value)
    assert 'newreid_tiny' in str(err.value)
    assert tool.main(['--root', str(root)]) == 1
    assert message in capsys.readouterr().err
    assert not (root / 'model_zoo.md').exists()


def test_sentence_case_keeps_acronyms():
    tool = _tool()
    assert tool.sentence_case('Text-to-Image Person Retrieval') == (
        'Text-to-image person retrieval')
    assert tool.sentence_case('Cloth-Changing Person Re-Identification') == (
        'Cloth-changing person re-identification')
    assert tool.sentence_case('Image ReID on PRCC') == 'Image ReID on PRCC'
