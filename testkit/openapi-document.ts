import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import * as ajvFormats from 'ajv-formats';
import { parse } from 'yaml';
import { REPO_ROOT } from './processes.js';

/** apps/api/openapi.yaml, parsed, and ajv validators compiled from its own schemas: what the api's answers are checked against. */
export const DOCUMENT_FILE = join(REPO_ROOT, 'apps/api/openapi.yaml');
export const DOCUMENT_TEXT = readFileSync(DOCUMENT_FILE, 'utf8');

export type Json = Record<string, unknown>;
export interface MediaType {
  schema?: Json;
}
export interface ResponseObject {
  $ref?: string;
  description?: string;
  content?: Record<string, MediaType>;
}
export interface Operation {
  security?: unknown[];
  requestBody?: { content?: Record<string, MediaType> };
  responses: Record<string, ResponseObject>;
}
export interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; responses: Record<string, ResponseObject> };
}

export const document = parse(DOCUMENT_TEXT) as Document;
export const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

/** Every documented operation as `METHOD /path` (OpenAPI path templates). */
export function documentedOperations(): string[] {
  return Object.entries(document.paths).flatMap(([path, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m.toUpperCase()} ${path}`));
}

// ---- ajv, compiled from the document's own schemas --------------------------------

const SCHEMA_ID = 'https://chango-backup.invalid/openapi.yaml';

/** Points the document's `#/components/schemas/X` refs at the ajv resource holding them. */
function absoluteRefs<T>(value: T): T {
  if (Array.isArray(value)) return value.map(absoluteRefs) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => {
        if (key === '$ref' && typeof inner === 'string') {
          assert.match(inner, /^#\/components\/schemas\/[A-Za-z0-9]+$/, `schema refs point at components/schemas: ${inner}`);
          return [key, `${SCHEMA_ID}#/$defs/${inner.slice('#/components/schemas/'.length)}`];
        }
        return [key, absoluteRefs(inner)];
      }),
    ) as T;
  }
  return value;
}

function newAjv(): Ajv2020 {
  // strict: unknown keywords and formats in the document are errors; allErrors: report every problem.
  const ajv = new Ajv2020({ strict: true, strictTypes: false, allErrors: true });
  (ajvFormats.default as unknown as (ajv: Ajv2020) => void)(ajv);
  ajv.addSchema({ $id: SCHEMA_ID, $defs: absoluteRefs(document.components.schemas) });
  return ajv;
}

export const ajv = newAjv();
const validators = new Map<string, ValidateFunction>();

export function validatorFor(schema: Json): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile(absoluteRefs(schema));
    validators.set(key, validate);
  }
  return validate;
}

export function componentValidator(name: string): ValidateFunction {
  assert.ok(document.components.schemas[name], `schema ${name} is documented`);
  return validatorFor({ $ref: `#/components/schemas/${name}` });
}

export function resolveResponse(response: ResponseObject): ResponseObject {
  if (!response.$ref) return response;
  const name = response.$ref.replace('#/components/responses/', '');
  const resolved = document.components.responses[name];
  assert.ok(resolved, `response ${response.$ref} is documented`);
  return resolved;
}

