/**
 * A scheduler for effect's fibers that gives the event loop back every few milliseconds.
 *
 * effect's default scheduler runs every task queued so far in one `setImmediate`: 50,000 fibers
 * forked at once (callers retrying after an outage), or woken at once, run back to back in one
 * synchronous stretch of seconds, during which no timer fires and no socket is read — a pod's lease
 * renewal among them. This one keeps one queue per scheduler and runs it for at most `BUDGET_MILLIS`
 * per turn of the event loop, then yields to timers and I/O and goes on in the next turn. A fiber
 * that has run past the turn's budget yields at its next check (every 128 operations), so a mass
 * wake-up inside a turn (a batch commit completing 512 waiters) is cut into turns too.
 *
 * Urgent work (`urgent`: the pod's lease renewals) runs first in every turn, ahead of whatever is
 * queued. The SQLite and PostgreSQL journal layers provide this scheduler, so a program that runs
 * with them (its own fibers too) gets it.
 */
import type { Scheduler } from "effect"

/** How long one turn of the event loop may run fibers before timers and I/O get their turn. */
export const BUDGET_MILLIS = 5

/** How often (in operations) a running fiber looks at the clock to see whether the turn is over. */
const CHECK_EVERY = 128

class TaskQueue {
  private tasks: Array<() => void> = []
  private head = 0

  get size(): number {
    return this.tasks.length - this.head
  }

  push(task: () => void): void {
    this.tasks.push(task)
  }

  shift(): (() => void) | undefined {
    if (this.head >= this.tasks.length) return undefined
    const task = this.tasks[this.head]!
    this.head++
    if (this.head === this.tasks.length) {
      this.tasks = []
      this.head = 0
    } else if (this.head > 4096 && this.head * 2 > this.tasks.length) {
      this.tasks = this.tasks.slice(this.head)
      this.head = 0
    }
    return task
  }
}

/** The shared queues of one `BudgetScheduler`, run a budget at a time. */
class BudgetQueues {
  readonly urgent = new TaskQueue()
  readonly normal = new TaskQueue()
  private scheduled = false
  /** When the turn in progress must end (performance.now()); Infinity outside a turn. */
  deadline = Number.POSITIVE_INFINITY

  schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.turn)
  }

  readonly turn = (): void => {
    this.scheduled = false
    this.deadline = performance.now() + BUDGET_MILLIS
    try {
      let ran = 0
      while (true) {
        const task = this.urgent.shift() ?? this.normal.shift()
        if (task === undefined) break
        task()
        if ((++ran & 7) === 0 && performance.now() >= this.deadline) break
      }
    } finally {
      this.deadline = Number.POSITIVE_INFINITY
      if (this.urgent.size > 0 || this.normal.size > 0) this.schedule()
    }
  }

  flush(): void {
    while (true) {
      const task = this.urgent.shift() ?? this.normal.shift()
      if (task === undefined) return
      task()
    }
  }
}

class Dispatcher implements Scheduler.SchedulerDispatcher {
  private readonly queues: BudgetQueues
  private readonly urgent: boolean

  constructor(queues: BudgetQueues, urgent: boolean) {
    this.queues = queues
    this.urgent = urgent
  }

  scheduleTask(task: () => void, priority: number): void {
    ;(this.urgent || priority < 0 ? this.queues.urgent : this.queues.normal).push(task)
    this.queues.schedule()
  }

  flush(): void {
    this.queues.flush()
  }
}

/** See the module comment. */
export class BudgetScheduler implements Scheduler.Scheduler {
  readonly executionMode = "async" as const
  private readonly queues: BudgetQueues
  private readonly dispatcher: Dispatcher
  private readonly isUrgent: boolean
  private urgentView: BudgetScheduler | undefined

  constructor(queues: BudgetQueues = new BudgetQueues(), urgent = false) {
    this.queues = queues
    this.isUrgent = urgent
    this.dispatcher = new Dispatcher(queues, urgent)
  }

  /** The same queues, for fibers whose tasks run ahead of everything else (lease renewals). */
  get urgent(): BudgetScheduler {
    if (this.isUrgent) return this
    this.urgentView ??= new BudgetScheduler(this.queues, true)
    return this.urgentView
  }

  shouldYield(fiber: {
    readonly currentOpCount: number
    readonly cache: { readonly maxOpsBeforeYield: number }
  }): boolean {
    const ops = fiber.currentOpCount
    if (ops >= fiber.cache.maxOpsBeforeYield) return true
    return (ops & (CHECK_EVERY - 1)) === 0 && !this.isUrgent && performance.now() >= this.queues.deadline
  }

  makeDispatcher(): Scheduler.SchedulerDispatcher {
    return this.dispatcher
  }
}

/** One scheduler per process: every fiber on it shares its turns. */
export const shared: BudgetScheduler = new BudgetScheduler()

/** The scheduler for urgent fibers: urgent on a `BudgetScheduler`, else `current` unchanged. */
export const urgentOf = (current: Scheduler.Scheduler): Scheduler.Scheduler =>
  current instanceof BudgetScheduler ? current.urgent : current
