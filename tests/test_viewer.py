"""The pygame viewer, driven with real key events under SDL's dummy video driver."""

import gymnasium as gym
import numpy as np
import pygame
import pytest

import envs  # noqa: F401
from agents.dp import ValueIterationAgent
from arena.match import record_episode
from arena.viewer import SPEEDS, Viewer, export_video, hud_text, render_frames, ViewerError


@pytest.fixture(scope="module")
def cliff_replay():
    env = gym.make("arena/GridWorld-v0", layout="cliff")
    agent = ValueIterationAgent()
    agent.fit(env)
    return record_episode(agent, env, 0)


def key(k, unicode=""):
    return pygame.event.Event(pygame.KEYDOWN, key=k, unicode=unicode, mod=0)


def test_keys_pause_step_speed_restart_toggle_and_quit(cliff_replay):
    v = Viewer(cliff_replay)
    assert not v.paused and v.t == 0
    v.handle(key(pygame.K_SPACE))
    assert v.paused
    v.handle(key(pygame.K_RIGHT))
    v.handle(key(pygame.K_RIGHT))
    assert v.t == 2
    v.handle(key(pygame.K_LEFT))
    assert v.t == 1
    v.handle(key(pygame.K_LEFT))
    v.handle(key(pygame.K_LEFT))
    assert v.t == 0  # stops at the start
    speed = v.speed
    v.handle(key(pygame.K_EQUALS, "+"))
    assert v.speed > speed
    v.handle(key(pygame.K_MINUS, "-"))
    v.handle(key(pygame.K_MINUS, "-"))
    assert v.speed < speed
    v.handle(key(pygame.K_v))
    v.handle(key(pygame.K_p))
    assert not v.show_values and not v.show_policy
    v.t = 7
    v.handle(key(pygame.K_r))
    assert v.t == 0 and not v.paused
    v.handle(key(pygame.K_q))
    assert not v.running


def test_play_advances_and_pauses_at_the_end(cliff_replay):
    v = Viewer(cliff_replay)
    for _ in range(100):
        v.advance()
    assert v.t == cliff_replay.steps and v.paused


def test_hud_shows_step_action_reward_and_return(cliff_replay):
    v = Viewer(cliff_replay)
    assert hud_text(v.timeline, 0) == "step 0/13  return 0  next up"
    # the status line names the move that led here and the move the arrow points to
    assert hud_text(v.timeline, 1) == "step 1/13  last up  reward -1  return -1  next right"
    assert hud_text(v.timeline, 13).endswith("return -13  (end)")


def test_the_legend_explains_the_heatmap_marks_and_arrows(cliff_replay):
    from arena.viewer import legend_items

    v = Viewer(cliff_replay)
    texts = [text for _, text, _ in legend_items(v.timeline, show_values=True)]
    assert texts[0].startswith("V ") and {"agent", "start", "goal", "cliff", "next move"} <= set(texts)
    assert not any(t.startswith("V ") for _, t, _ in legend_items(v.timeline, show_values=False))


def test_the_canvas_fits_the_longest_status_line_and_the_legend(cliff_replay):
    from arena.viewer import _font, canvas_size, hud_text

    v = Viewer(cliff_replay)
    font = _font()
    w, h = canvas_size(v.timeline, font)
    board_w, board_h = v.timeline.env.unwrapped.frame_size()
    longest = max(font.size(hud_text(v.timeline, t, "  [paused]"))[0] for t in range(len(v.timeline)))
    assert w >= max(board_w, longest) and w <= max(board_w, longest + 16, 700) and h > board_h


def test_window_runs_pumps_events_and_closes_on_quit(cliff_replay):
    v = Viewer(cliff_replay, speed=SPEEDS[-1])
    seen = []

    def on_frame(viewer, window):
        seen.append(viewer.t)
        if len(seen) == 3:
            pygame.event.post(pygame.event.Event(pygame.QUIT))

    v.run(max_seconds=10, on_frame=on_frame)
    assert not v.running and len(seen) >= 3
    assert not pygame.display.get_init()


def test_overlays_change_what_is_drawn(cliff_replay):
    with_overlay = render_frames(cliff_replay)[0]
    plain = render_frames(cliff_replay, show_values=False, show_policy=False)[0]
    assert with_overlay.shape == plain.shape
    assert (with_overlay != plain).any(axis=2).mean() > 0.3  # most of the free cells are tinted


def test_frames_are_deterministic(cliff_replay):
    a, b = render_frames(cliff_replay), render_frames(cliff_replay)
    assert len(a) == cliff_replay.steps + 1 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_unknown_video_format_is_refused(cliff_replay, tmp_path):
    with pytest.raises(ViewerError, match="use a path ending in .mp4 or .gif"):
        export_video(cliff_replay, tmp_path / "clip.avi")


def test_training_replays_mark_exploratory_moves(tmp_path):
    from arena.match import RecordTraining
    from arena.registry import make_agent
    from arena.replay import load_replay

    env = gym.make("arena/GridWorld-v0", layout="cliff")
    agent = make_agent("q-learning", episodes=3)
    agent.fit(env, seed=0, callbacks=[RecordTraining(1, tmp_path, "q-learning")])
    rep = load_replay(tmp_path / "train-episode000000.npz")
    v = Viewer(rep)
    marks = [hud_text(v.timeline, t) for t in range(1, len(v.timeline))]
    assert all(m.startswith("training episode 0: step") for m in marks)
    assert any("(explore)" in m for m in marks) and any("(greedy)" in m for m in marks)
    explored = [v.timeline.explored(t) for t in range(rep.steps)]
    assert explored == [int(a) != int(g) for a, g in zip(rep.actions, rep.overlay["greedy_actions"])]


# --------------------------------------------------------------------------- a person plays


def typist(*keys):
    """An on_frame hook that presses the given keys, one per drawn frame, as real pygame events."""
    queue = list(keys)

    def press(agent, window):
        if queue:
            k = queue.pop(0)
            k, char = (k, "") if isinstance(k, int) else (ord(k) if k.isascii() else 0, k)  # as SDL reports them
            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, unicode=char, mod=0))
    return press, queue


def test_a_person_who_walks_the_cliff_edge_lands_beside_value_iteration(workdir):
    from arena.standings import standings
    from arena.leaderboard import Leaderboard
    from arena.replay import load_replay, verify
    from arena.human import play_human

    import arena

    arena.evaluate("value-iteration", "grid:cliff", train_seeds=1, eval_episodes=1, record=True)
    # a stray key first (ignored), then w for up, right eleven times (arrows and d), down, and a key to close
    keys = [pygame.K_x, "w", *[pygame.K_RIGHT] * 6, *["d"] * 5, pygame.K_DOWN, pygame.K_SPACE]
    hook, left = typist(*keys)
    result = play_human("arena/GridWorld-v0", {"layout": "cliff"}, max_seconds=20, on_frame=hook)
    assert not left and result.agent == "human" and result.returns == [-13.0] and result.successes == [True]
    assert result.score == pytest.approx(1.0, abs=1e-9) and "sampled" in result.note
    replay = load_replay(result.replay_paths[0])
    assert replay.agent == "human" and replay.seed == 1000 and verify(replay).ok
    entries = {st.agent: st for st in standings(Leaderboard().results())}
    assert entries["human"].rank == entries["value-iteration"].rank == 1
    again, _ = typist(*["s"] * 3, pygame.K_ESCAPE)  # a second sitting, given up midway: nothing lands
    with pytest.raises(ViewerError, match="no result was recorded"):
        play_human("arena/GridWorld-v0", {"layout": "cliff"}, max_seconds=20, on_frame=again)
    assert [r.train_seed for r in Leaderboard().results(agent="human")] == [0]


def test_a_person_types_a_sequence_and_the_answers_stay_hidden(workdir):
    import gymnasium as gym

    from arena.human import play_human
    from arena.viewer import KeyboardAgent

    env = gym.make("arena/SequencePrediction-v0", task="copy", length=3)
    env.reset(seed=1000)
    u = env.unwrapped
    inputs = [u.token_text(int(t)) for t in u.shown[u.targets < 0]]
    steps = len(u.targets)
    wanted = [u.token_text(int(t)) for t in u.targets[u.targets >= 0]]
    # while inputs are shown any key will do: the agent must still press one per step
    typed = [inputs[0]] * (steps - len(wanted)) + wanted + [" "]
    hook, _ = typist(*typed)
    result = play_human("arena/SequencePrediction-v0", {"task": "copy", "length": 3}, max_seconds=20, on_frame=hook)
    assert result.successes == [True] and result.score == 1.0 and result.returns == [pytest.approx(1.0)]
    # the window never shows the wanted outputs: drawn for a person, the want row is empty
    seen = []
    agent = KeyboardAgent("arena/SequencePrediction-v0", {"task": "copy", "length": 3}, max_seconds=0.2,
                          on_frame=lambda a, w: seen.append(pygame.surfarray.array3d(w).copy()))
    agent.reset(seed=1000)
    with pytest.raises(ViewerError, match="no key pressed"):
        agent.act(None)
    agent.close()
    hidden = seen[-1]
    env.unwrapped.draw(surface := pygame.Surface(env.unwrapped.frame_size()), show_values=True)
    shown_all = pygame.surfarray.array3d(surface)
    w, h = env.unwrapped.frame_size()
    assert not np.array_equal(hidden[:w, :h], shown_all)  # the want row differs: hidden for the person


def test_only_grids_and_sequence_tasks_can_be_played_by_hand():
    from arena.viewer import KeyboardAgent

    with pytest.raises(ViewerError, match="cannot be played from the keyboard"):
        KeyboardAgent("arena/ImageGeneration-v0", {})


def test_a_person_plays_kings_moves_with_q_e_z_c_and_finds_the_7_step_path(workdir):
    import gymnasium as gym

    from agents.dp import value_iteration
    from arena.human import play_human

    kwargs = {"layout": "windy", "moves": "king"}
    env = gym.make("arena/GridWorld-v0", **kwargs)
    _, policy = value_iteration(env.unwrapped.mdp, 1.0)
    key = {"up": "w", "right": "d", "down": "s", "left": "a", "up-right": "e", "down-right": "c", "down-left": "z",
           "up-left": "q"}
    s, _ = env.reset(seed=1000)
    keys, done = [], False
    while not done:
        a = int(policy[s].argmax())
        keys.append(key[env.unwrapped.action_names[a]])
        s, _, done, _, _ = env.step(a)
    hook, left = typist(*keys, pygame.K_SPACE)
    result = play_human("arena/GridWorld-v0", kwargs, max_seconds=20, on_frame=hook)
    assert not left and len(keys) == 7 and result.returns == [-7.0] and result.successes == [True]
