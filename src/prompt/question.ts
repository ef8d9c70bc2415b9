import type {ChatMessage} from './render.js'

/*
 * A question of an answer-level eval (`invagent eval --questions`) as chat messages. The engines
 * apply the model's own chat template to them, exactly as they do to the audit's conversations,
 * so a question is asked the way a fine-tuned model will be asked in use. The context comes
 * before the question, so the question is the last thing the model reads.
 */

/** What a question line holds that the model sees. */
export interface QuestionPrompt {
  query: string
  context?: string
}

export const QUESTION_SYSTEM_PROMPT =
  'Answer the question. When a context is given, answer from it alone. ' +
  'Reply with the answer only: no explanation and no restating of the question.'

/** The user turn: `Context: …` and `Question: …` when there is a context, the question alone otherwise. */
export function questionMessage(question: QuestionPrompt): string {
  return question.context === undefined ? question.query : `Context: ${question.context}\n\nQuestion: ${question.query}`
}

/** The system prompt for answers, then the question as the user turn. */
export function renderQuestion(question: QuestionPrompt): ChatMessage[] {
  return [
    {role: 'system', content: QUESTION_SYSTEM_PROMPT},
    {role: 'user', content: questionMessage(question)},
  ]
}
