import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextTime, parseSchedule, previousTime, ScheduleError, validTimeZone } from './cron.js';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

test('nextTime finds the next firing', () => {
  const cases: [string, string, string | undefined, string | undefined][] = [
    // schedule, after, zone, expected next
    ['* * * * *', '2026-03-01T10:00:30Z', 'UTC', '2026-03-01T10:01:00.000Z'],
    ['* * * * *', '2026-03-01T10:00:00Z', 'UTC', '2026-03-01T10:01:00.000Z'],
    ['*/15 * * * *', '2026-03-01T10:16:00Z', 'UTC', '2026-03-01T10:30:00.000Z'],
    ['5/20 * * * *', '2026-03-01T10:26:00Z', 'UTC', '2026-03-01T10:45:00.000Z'],
    ['0 9-17/4 * * *', '2026-03-01T13:00:00Z', 'UTC', '2026-03-01T17:00:00.000Z'],
    ['0 0 * * MON-FRI', '2026-03-06T12:00:00Z', 'UTC', '2026-03-09T00:00:00.000Z'], // Fri → Mon
    ['0 0 * * sun', '2026-03-02T00:00:00Z', 'UTC', '2026-03-08T00:00:00.000Z'],
    ['0 0 1 jan,JUL *', '2026-03-02T00:00:00Z', 'UTC', '2026-07-01T00:00:00.000Z'],
    // Both day fields restricted: either one matches (the 13th or any Friday).
    ['0 0 13 * 5', '2026-03-01T00:00:00Z', 'UTC', '2026-03-06T00:00:00.000Z'],
    // Day of week is *: the day of month alone decides.
    ['0 0 13 * *', '2026-03-01T00:00:00Z', 'UTC', '2026-03-13T00:00:00.000Z'],
    ['0 0 29 2 *', '2026-03-01T00:00:00Z', 'UTC', '2028-02-29T00:00:00.000Z'],
    ['0 0 30 2 *', '2026-03-01T00:00:00Z', 'UTC', undefined],
    ['@hourly', '2026-03-01T10:59:59Z', 'UTC', '2026-03-01T11:00:00.000Z'],
    ['@daily', '2026-03-01T10:00:00Z', 'UTC', '2026-03-02T00:00:00.000Z'],
    ['@midnight', '2026-03-01T10:00:00Z', 'UTC', '2026-03-02T00:00:00.000Z'],
    ['@weekly', '2026-03-01T10:00:00Z', 'UTC', '2026-03-08T00:00:00.000Z'],
    ['@monthly', '2026-03-01T10:00:00Z', 'UTC', '2026-04-01T00:00:00.000Z'],
    ['@yearly', '2026-03-01T10:00:00Z', 'UTC', '2027-01-01T00:00:00.000Z'],
    ['@annually', '2026-12-31T23:59:00Z', 'UTC', '2027-01-01T00:00:00.000Z'],
    // Time zones: 09:00 in Tokyo is 00:00 UTC; in New York the offset moves with DST.
    ['0 9 * * *', '2026-03-01T01:00:00Z', 'Asia/Tokyo', '2026-03-02T00:00:00.000Z'],
    ['0 9 * * *', '2026-03-07T20:00:00Z', 'America/New_York', '2026-03-08T13:00:00.000Z'],
    ['0 9 * * *', '2026-03-08T20:00:00Z', 'America/New_York', '2026-03-09T13:00:00.000Z'],
    ['30 5 * * *', '2026-10-25T00:00:00Z', 'Europe/Berlin', '2026-10-25T04:30:00.000Z'],
  ];
  for (const [schedule, after, zone, want] of cases) {
    const got = iso(nextTime(parseSchedule(schedule), at(after), zone));
    assert.equal(got, want, `${schedule} after ${after} in ${zone}`);
  }
});

test('previousTime finds the last firing at or before a time', () => {
  const cases: [string, string, string, string | undefined][] = [
    ['* * * * *', '2026-03-01T10:00:30Z', 'UTC', '2026-03-01T10:00:00.000Z'],
    ['*/15 * * * *', '2026-03-01T10:14:00Z', 'UTC', '2026-03-01T10:00:00.000Z'],
    ['0 0 1 * *', '2026-03-15T10:00:00Z', 'UTC', '2026-03-01T00:00:00.000Z'],
    ['0 0 31 * *', '2026-03-15T10:00:00Z', 'UTC', '2026-01-31T00:00:00.000Z'],
    ['0 9 * * *', '2026-03-09T12:59:00Z', 'America/New_York', '2026-03-08T13:00:00.000Z'],
    ['0 0 30 2 *', '2026-03-15T10:00:00Z', 'UTC', undefined],
  ];
  for (const [schedule, before, zone, want] of cases) {
    const got = iso(previousTime(parseSchedule(schedule), at(before), zone));
    assert.equal(got, want, `${schedule} before ${before}`);
  }
});

test('parseSchedule rejects malformed schedules with a reason', () => {
  const cases: [string, RegExp][] = [
    ['* * * *', /expected exactly 5 fields, found 4/],
    ['* * * * * *', /expected exactly 5 fields, found 6/],
    ['60 * * * *', /end of range \(60\) above maximum \(59\)/],
    ['* 24 * * *', /above maximum \(23\)/],
    ['* * 0 * *', /beginning of range \(0\) below minimum \(1\)/],
    ['* * * 13 *', /above maximum \(12\)/],
    ['* * * * 7', /above maximum \(6\)/],
    ['5-2 * * * *', /beginning of range \(5\) beyond end of range \(2\)/],
    ['*/0 * * * *', /step of range should be a positive number/],
    ['a * * * *', /failed to parse int from a/],
    ['1-2-3 * * * *', /too many hyphens/],
    ['@every 5m', /unrecognized descriptor/],
    ['@fortnightly', /unrecognized descriptor/],
    [', * * * *', /invalid range/],
  ];
  for (const [schedule, message] of cases) {
    assert.throws(
      () => parseSchedule(schedule),
      (err: Error) => err instanceof ScheduleError && message.test(err.message),
      schedule,
    );
  }
});

test('validTimeZone knows IANA names only', () => {
  assert.equal(validTimeZone('Europe/Paris'), true);
  assert.equal(validTimeZone('Etc/UTC'), true);
  assert.equal(validTimeZone('Mars/Olympus'), false);
});
