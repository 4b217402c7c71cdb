// Live announcements: what a screen-reader user would want to hear without
// asking, and nothing else. The page has one polite live region (the
// announcer); it speaks when the contest shown gets a new leader or when
// contests become decided, at most once every GAP_MS, and a push that
// changes neither says nothing. Figures, hovers and focus are never
// announced: they are read where they are.

import { setText } from "./format.js";

// The least time between two announcements; what happens meanwhile is said
// together, once the gap is over.
const GAP_MS = 10000;

// How many decided contests one announcement names before it counts the rest.
const NAMED = 3;

export class Announcer {
  constructor(node) {
    this.node = node;
    this.last = 0;
    this.timer = null;
    // The contest whose leader is followed, and the leader last told of
    // (or found when the contest was first shown).
    this.contest = null;
    this.told = null;
    this.leaderNews = null;
    // decided is every contest known decided; null until the first list,
    // which is the starting point, not news.
    this.decided = null;
    this.decidedNews = [];
  }

  // leader notes the contest shown (id, its label) and its leader (id and
  // name, or null). A leader other than the last one told of is announced;
  // a new contest, or the first figures, are the starting point.
  leader(contestId, label, leaderId, leaderName) {
    if (contestId !== this.contest) {
      this.contest = contestId;
      this.told = leaderId;
      this.leaderNews = null;
      return;
    }
    if (this.told === null) {
      // No votes were counted before: the first leader is not a change.
      this.told = leaderId;
      return;
    }
    if (leaderId === null || leaderId === this.told) {
      // Back to the leader last told of, before the news went out: there
      // is nothing to say.
      this.leaderNews = null;
      return;
    }
    this.leaderNews = { id: leaderId, text: `${label}: ${leaderName} now leads.` };
    this.flush();
  }

  // contests notes the list of contests (GET /api/v1/contests), each with
  // a display name, and announces those decided since the last list.
  contests(list, nameOf) {
    const now = new Set(list.filter((c) => c.decided).map((c) => c.contest_id));
    if (this.decided === null) {
      this.decided = now;
      return;
    }
    for (const c of list) {
      if (now.has(c.contest_id) && !this.decided.has(c.contest_id)) this.decidedNews.push(nameOf(c));
    }
    this.decided = now;
    this.flush();
  }

  flush() {
    if (!this.leaderNews && !this.decidedNews.length) return;
    const wait = this.last + GAP_MS - Date.now();
    if (wait > 0) {
      if (!this.timer) this.timer = setTimeout(() => { this.timer = null; this.flush(); }, wait);
      return;
    }
    const parts = [];
    if (this.leaderNews) {
      parts.push(this.leaderNews.text);
      this.told = this.leaderNews.id;
      this.leaderNews = null;
    }
    const d = this.decidedNews;
    if (d.length === 1) parts.push(`${d[0]} is decided.`);
    else if (d.length > 1 && d.length <= NAMED) parts.push(`${d.slice(0, -1).join(", ")} and ${d.at(-1)} are decided.`);
    else if (d.length > NAMED) parts.push(`${d.length} contests decided: ${d.slice(0, NAMED).join(", ")} and ${d.length - NAMED} more.`);
    this.decidedNews = [];
    this.last = Date.now();
    setText(this.node, parts.join(" "));
  }
}
