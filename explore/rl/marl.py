"""Multi-agent PPO over a :class:`~explore.envs.parallel.ConfigParallelEnv` (imports torch).

One agent per parameter, shared reward, as in "Multi-Agent Reinforcement Learning
for Microprocessor Design Space Exploration" (Krishnan et al., 2022). Two variants:

* ``independent`` — each agent has its own actor and critic (independent PPO
  learners, IPPO);
* ``shared`` — one actor and one critic for all agents, told apart by a one-hot
  agent id in the input (parameter sharing); the actor's output has as many logits
  as the largest parameter, the extra ones masked for smaller parameters.

Each iteration plays ``batch`` one-step episodes (every agent samples its value,
masked to feasible values), evaluates the joint configurations, and takes
``epochs`` clipped-PPO steps per agent on advantage = shared reward - the agent's
critic. Randomness comes from a generator seeded by ``seed``; torch's global seed is
forked and restored, so a run changes no process-wide state.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from explore.envs.parallel import ConfigParallelEnv
from explore.envs.problem import ConfigProblem
from explore.rl._torch import single_thread
from explore.rl.budget import Budget


def _mlp(n_in: int, n_out: int, hidden: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.Tanh(), nn.Linear(hidden, n_out))


class _Agents(nn.Module):
    """Actors and critics for all agents (independent or shared)."""

    def __init__(self, obs_dim: int, nvec: list[int], *, shared: bool, hidden: int) -> None:
        super().__init__()
        self.shared = shared
        self.n_agents = len(nvec)
        self.nmax = max(nvec)
        valid = torch.zeros(len(nvec), self.nmax, dtype=torch.bool)
        for i, n in enumerate(nvec):
            valid[i, :n] = True
        self.register_buffer("valid", valid)
        if shared:
            self.actor = _mlp(obs_dim + len(nvec), self.nmax, hidden)
            self.critic = _mlp(obs_dim + len(nvec), 1, hidden)
        else:
            self.actors = nn.ModuleList(_mlp(obs_dim, self.nmax, hidden) for _ in nvec)
            self.critics = nn.ModuleList(_mlp(obs_dim, 1, hidden) for _ in nvec)

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masked logits (batch, agents, nmax) and values (batch, agents)."""
        b = obs.shape[0]
        if self.shared:
            eye = torch.eye(self.n_agents).expand(b, -1, -1)
            x = torch.cat([obs.unsqueeze(1).expand(-1, self.n_agents, -1), eye], dim=-1)
            logits, values = self.actor(x), self.critic(x).squeeze(-1)
        else:
            logits = torch.stack([a(obs) for a in self.actors], dim=1)
            values = torch.cat([c(obs) for c in self.critics], dim=1)
        valid: torch.Tensor = self.valid  # type: ignore[assignment]
        allowed = valid & mask
        return logits.masked_fill(~allowed, -1e9), values


def mappo(
    problem: ConfigProblem,
    budget: Budget,
    *,
    seed: int,
    shared: bool = False,
    batch: int = 16,
    epochs: int = 4,
    lr: float = 3e-3,
    clip: float = 0.2,
    entropy: float = 0.03,
    hidden: int = 64,
) -> None:
    """Train the agents until the budget is spent (see the module doc)."""
    with single_thread():
        _train(problem, budget, seed=seed, shared=shared, batch=batch, epochs=epochs, lr=lr,
               clip=clip, entropy=entropy, hidden=hidden)  # fmt: skip


def _train(
    problem: ConfigProblem,
    budget: Budget,
    *,
    seed: int,
    shared: bool,
    batch: int,
    epochs: int,
    lr: float,
    clip: float,
    entropy: float,
    hidden: int,
) -> None:
    env = ConfigParallelEnv(problem, evaluator=budget)
    agents = env.possible_agents
    nvec = [int(env.action_space(a).n) for a in agents]  # type: ignore[attr-defined]
    obs_dim = int(env.observation_space(agents[0]).shape[0])  # type: ignore[index]
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _Agents(obs_dim, nvec, shared=shared, hidden=hidden)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    _obs0, infos = env.reset(seed=seed)
    mask = torch.zeros(len(agents), model.nmax, dtype=torch.bool)
    for i, a in enumerate(agents):
        mask[i, : nvec[i]] = torch.as_tensor(infos[a]["action_mask"], dtype=torch.bool)
    while not budget.exhausted:
        obs_l, act_l, rew_l = [], [], []
        for _ in range(batch):
            if budget.exhausted:
                break
            obs_d, _ = env.reset()
            o = torch.as_tensor(np.asarray(obs_d[agents[0]]), dtype=torch.float32).unsqueeze(0)
            with torch.no_grad():
                logits, _ = model(o, mask)
                probs = torch.softmax(logits[0], dim=-1)
                act = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
            _, rewards, *_ = env.step({a: int(act[i]) for i, a in enumerate(agents)})
            obs_l.append(o[0])
            act_l.append(act)
            rew_l.append(float(rewards[agents[0]]))
        if not obs_l:
            break
        _update(model, opt, obs_l, act_l, rew_l, mask, epochs=epochs, clip=clip, entropy=entropy)


def _update(
    model: _Agents,
    opt: Any,
    obs_l: list[torch.Tensor],
    act_l: list[torch.Tensor],
    rew_l: list[float],
    mask: torch.Tensor,
    *,
    epochs: int,
    clip: float,
    entropy: float,
) -> None:
    obs = torch.stack(obs_l)
    acts = torch.stack(act_l)  # (batch, agents)
    rew = torch.as_tensor(rew_l, dtype=torch.float32).unsqueeze(1).expand_as(acts)
    with torch.no_grad():
        logits, values = model(obs, mask)
        old_logp = torch.log_softmax(logits, -1).gather(-1, acts.unsqueeze(-1)).squeeze(-1)
        adv = rew - values
        if adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    for _ in range(epochs):
        logits, values = model(obs, mask)
        logp_all = torch.log_softmax(logits, -1)
        logp = logp_all.gather(-1, acts.unsqueeze(-1)).squeeze(-1)
        ratio = torch.exp(logp - old_logp)
        pg = -torch.min(ratio * adv, ratio.clamp(1 - clip, 1 + clip) * adv).mean()
        ent = -(torch.softmax(logits, -1) * logp_all).sum(-1).mean()
        vloss = ((values - rew) ** 2).mean()
        loss = pg + 0.5 * vloss - entropy * ent
        opt.zero_grad()
        loss.backward()
        opt.step()


def marl_independent(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """Independent PPO learners, one per parameter."""
    mappo(problem, budget, seed=seed, shared=False)


def marl_shared(problem: ConfigProblem, budget: Budget, *, seed: int) -> None:
    """PPO agents sharing one actor and critic (agent id as input)."""
    mappo(problem, budget, seed=seed, shared=True)
