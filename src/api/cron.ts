/**
 * Cron schedules as CronJobs write them: five fields (minute, hour, day of month, month,
 * day of week) with `*`, `?`, values, names (JAN-DEC, SUN-SAT), ranges `a-b`, steps `/n`
 * and lists `a,b`; or one of the descriptors @yearly, @annually, @monthly, @weekly,
 * @daily, @midnight, @hourly. As in cron, when both day fields are restricted a day
 * matching either one matches; when one of them is `*` the other decides.
 *
 * Times are evaluated in a time zone (an IANA name, through Intl); without one, in the
 * process's own zone, as the Kubernetes controller manager does.
 */

/** A schedule that cannot be parsed; the message is the reason, for validation errors. */
export class ScheduleError extends Error {}

export interface Schedule {
  minutes: boolean[];
  hours: boolean[];
  daysOfMonth: boolean[];
  months: boolean[];
  daysOfWeek: boolean[];
  /** The day-of-month or day-of-week field was `*`: the days must match both fields. */
  anyDay: boolean;
}

interface FieldRange {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun'];
MONTH_NAMES.push('jul', 'aug', 'sep', 'oct', 'nov', 'dec');
const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const FIELDS: FieldRange[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES },
  { name: 'day of week', min: 0, max: 6, names: DAY_NAMES },
];

const DESCRIPTORS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/** Parses a schedule; throws ScheduleError saying what is wrong. */
export function parseSchedule(text: string): Schedule {
  const trimmed = text.trim();
  if (trimmed.startsWith('@')) {
    const expanded = DESCRIPTORS[trimmed.toLowerCase()];
    if (!expanded) throw new ScheduleError(`unrecognized descriptor: ${trimmed}`);
    return parseSchedule(expanded);
  }
  const fields = trimmed.split(/\s+/).filter((f) => f !== '');
  if (fields.length !== 5) {
    throw new ScheduleError(`expected exactly 5 fields, found ${fields.length}: [${fields}]`);
  }
  const parsed = fields.map((f, i) => parseField(f, FIELDS[i]));
  return {
    minutes: parsed[0].set,
    hours: parsed[1].set,
    daysOfMonth: parsed[2].set,
    months: parsed[3].set,
    daysOfWeek: parsed[4].set,
    anyDay: parsed[2].star || parsed[4].star,
  };
}

function parseField(text: string, range: FieldRange): { set: boolean[]; star: boolean } {
  const set = new Array<boolean>(range.max + 1).fill(false);
  let star = false;
  for (const part of text.split(',')) {
    const { start, end, step, wildcard } = parsePart(part, range);
    for (let v = start; v <= end; v += step) set[v] = true;
    if (wildcard && step === 1) star = true;
  }
  return { set, star };
}

function parsePart(part: string, range: FieldRange) {
  const [span, stepText, extra] = part.split('/');
  if (extra !== undefined || span === '') throw new ScheduleError(`invalid range: ${part}`);
  let step = 1;
  if (stepText !== undefined) {
    step = parseNumber(stepText, part);
    if (step <= 0) throw new ScheduleError(`step of range should be a positive number: ${part}`);
  }
  const wildcard = span === '*' || span === '?';
  if (wildcard) return { start: range.min, end: range.max, step, wildcard };
  const bounds = span.split('-');
  if (bounds.length > 2) throw new ScheduleError(`too many hyphens: ${part}`);
  const start = parseValue(bounds[0], range);
  // `a/n` means from a to the end of the field, every n.
  const end = bounds.length === 2 ? parseValue(bounds[1], range) : stepText ? range.max : start;
  if (start < range.min) {
    throw new ScheduleError(`beginning of range (${start}) below minimum (${range.min}): ${part}`);
  }
  if (end > range.max) {
    throw new ScheduleError(`end of range (${end}) above maximum (${range.max}): ${part}`);
  }
  if (start > end) {
    throw new ScheduleError(`beginning of range (${start}) beyond end of range (${end}): ${part}`);
  }
  return { start, end, step, wildcard };
}

function parseValue(text: string, range: FieldRange): number {
  const index = range.names?.indexOf(text.toLowerCase()) ?? -1;
  if (index >= 0) return index + range.min;
  return parseNumber(text, text);
}

function parseNumber(text: string, context: string): number {
  if (!/^\d+$/.test(text)) throw new ScheduleError(`failed to parse int from ${context}`);
  return Number(text);
}

/** Whether Intl knows the IANA time zone `zone`. */
export function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const MINUTE = 60_000;
/** How far ahead or back a schedule is searched before it is declared never to fire. */
const HORIZON_MS = 5 * 366 * 24 * 3600_000;

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  weekday: number;
}

/** Converts between instants and wall-clock time in one zone. */
class Zone {
  private static readonly formats = new Map<string, Intl.DateTimeFormat>();
  private readonly format?: Intl.DateTimeFormat;

  constructor(zone: string | undefined) {
    const name = zone || Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (name === 'UTC' || name === 'Etc/UTC') return;
    let format = Zone.formats.get(name);
    if (!format) {
      format = new Intl.DateTimeFormat('en-US', {
        timeZone: name,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
      Zone.formats.set(name, format);
    }
    this.format = format;
  }

  /** The zone's offset from UTC at instant `t`, in ms. */
  offset(t: number): number {
    if (!this.format) return 0;
    const parts: Record<string, number> = {};
    for (const p of this.format.formatToParts(new Date(t))) {
      if (p.type !== 'literal') parts[p.type] = Number(p.value);
    }
    const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute);
    return wall - Math.floor(t / MINUTE) * MINUTE;
  }

  wall(t: number): WallTime {
    const d = new Date(t + this.offset(t));
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      weekday: d.getUTCDay(),
    };
  }

  /** The instant of a wall-clock time (fields may overflow, as with Date.UTC). */
  instant(year: number, month: number, day: number, hour = 0, minute = 0): number {
    const wall = Date.UTC(year, month - 1, day, hour, minute);
    const guess = wall - this.offset(wall);
    return wall - this.offset(guess);
  }
}

function dayMatches(s: Schedule, w: WallTime): boolean {
  const dom = s.daysOfMonth[w.day];
  const dow = s.daysOfWeek[w.weekday];
  return s.anyDay ? dom && dow : dom || dow;
}

/**
 * The first time after `after` (ms) that the schedule fires, in whole minutes, or undefined
 * if it never fires within five years (e.g. `0 0 30 2 *`).
 */
export function nextTime(s: Schedule, after: number, zone?: string): number | undefined {
  const z = new Zone(zone);
  let t = Math.floor(after / MINUTE) * MINUTE + MINUTE;
  const limit = after + HORIZON_MS;
  while (t <= limit) {
    const w = z.wall(t);
    let next: number;
    if (!s.months[w.month]) next = z.instant(w.year, w.month + 1, 1);
    else if (!dayMatches(s, w)) next = z.instant(w.year, w.month, w.day + 1);
    else if (!s.hours[w.hour]) next = z.instant(w.year, w.month, w.day, w.hour + 1);
    else if (!s.minutes[w.minute]) next = t + MINUTE;
    else return t;
    // Around a daylight-saving change the wall clock may map back; always move forward.
    t = Math.max(next, t + MINUTE);
  }
  return undefined;
}

/** The last time at or before `at` (ms) that the schedule fired, or undefined. */
export function previousTime(s: Schedule, at: number, zone?: string): number | undefined {
  const z = new Zone(zone);
  let t = Math.floor(at / MINUTE) * MINUTE;
  const limit = at - HORIZON_MS;
  while (t >= limit) {
    const w = z.wall(t);
    let prev: number;
    if (!s.months[w.month]) prev = z.instant(w.year, w.month, 1) - MINUTE;
    else if (!dayMatches(s, w)) prev = z.instant(w.year, w.month, w.day) - MINUTE;
    else if (!s.hours[w.hour]) prev = z.instant(w.year, w.month, w.day, w.hour) - MINUTE;
    else if (!s.minutes[w.minute]) prev = t - MINUTE;
    else return t;
    t = Math.min(prev, t - MINUTE);
  }
  return undefined;
}
