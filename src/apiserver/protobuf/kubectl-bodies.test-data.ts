/**
 * Request bodies captured from kubectl 1.32 on loopback, each with the JSON that
 * `kubectl create ... --dry-run=client -o json` printed for the same command.
 */
export const KUBECTL_BODIES: { command: string; body: string; json: unknown }[] = [
  {
    command: 'kubectl create namespace t1',
    body: 'azhzAAoPCgJ2MRIJTmFtZXNwYWNlEhoKEgoCdDESABoAIgAqADIAOABCABIAGgIKABoAIgA=',
    json: {
      kind: 'Namespace',
      apiVersion: 'v1',
      metadata: { name: 't1', creationTimestamp: null },
      spec: {},
      status: {},
    },
  },
  {
    command: 'kubectl create deployment d1 --image=nginx:1 --replicas=3 --port=80 -- sleep 10',
    body: 'azhzAAoVCgdhcHBzL3YxEgpEZXBsb3ltZW50EsEBCh0KAmQxEgAaACIAKgAyADgAQgBaCQoDYXBwEgJkMRKRAQgDEgsKCQoDYXBwEgJkMRp4ChsKABIAGgAiACoAMgA4AEIAWgkKA2FwcBICZDESWRI7CgVuZ2lueBIHbmdpbng6MRoFc2xlZXAaAjEwKgAyCgoAEAAYUCIAKgBCAGoAcgCAAQCIAQCQAQCiAQAaADIAQgBKAFIAWABgAGgAggEAigEAmgEAwgEAIgIKACgAOAAaDAgAEAAYACAAKAA4ABoAIgA=',
    json: {
      kind: 'Deployment',
      apiVersion: 'apps/v1',
      metadata: { name: 'd1', creationTimestamp: null, labels: { app: 'd1' } },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'd1' } },
        template: {
          metadata: { creationTimestamp: null, labels: { app: 'd1' } },
          spec: {
            containers: [
              {
                name: 'nginx',
                image: 'nginx:1',
                command: ['sleep', '10'],
                ports: [{ containerPort: 80 }],
                resources: {},
              },
            ],
          },
        },
        strategy: {},
      },
      status: {},
    },
  },
  {
    command: 'kubectl create deployment d3 --image=nginx:1 --image=busybox:1',
    body: 'azhzAAoVCgdhcHBzL3YxEgpEZXBsb3ltZW50EtUBCh0KAmQzEgAaACIAKgAyADgAQgBaCQoDYXBwEgJkMxKlAQgBEgsKCQoDYXBwEgJkMxqLAQobCgASABoAIgAqADIAOABCAFoJCgNhcHASAmQzEmwSJAoFbmdpbngSB25naW54OjEqAEIAagByAIABAIgBAJABAKIBABIoCgdidXN5Ym94EglidXN5Ym94OjEqAEIAagByAIABAIgBAJABAKIBABoAMgBCAEoAUgBYAGAAaACCAQCKAQCaAQDCAQAiAgoAKAA4ABoMCAAQABgAIAAoADgAGgAiAA==',
    json: {
      kind: 'Deployment',
      apiVersion: 'apps/v1',
      metadata: { name: 'd3', creationTimestamp: null, labels: { app: 'd3' } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'd3' } },
        template: {
          metadata: { creationTimestamp: null, labels: { app: 'd3' } },
          spec: {
            containers: [
              { name: 'nginx', image: 'nginx:1', resources: {} },
              { name: 'busybox', image: 'busybox:1', resources: {} },
            ],
          },
        },
        strategy: {},
      },
      status: {},
    },
  },
  {
    command: 'kubectl create configmap c1 --from-literal=a=b --from-file=cmds.txt',
    body: 'azhzAAoPCgJ2MRIJQ29uZmlnTWFwEucFChIKAmMxEgAaACIAKgAyADgAQgASBgoBYRIBYhLIBQoIY21kcy50eHQSuwVjcmVhdGUgbmFtZXNwYWNlIHQxCmNyZWF0ZSBkZXBsb3ltZW50IGQxIC0taW1hZ2U9bmdpbng6MSAtLXJlcGxpY2FzPTMgLS1wb3J0PTgwIC0tIHNsZWVwIDEwCmNyZWF0ZSBkZXBsb3ltZW50IGQzIC0taW1hZ2U9bmdpbng6MSAtLWltYWdlPWJ1c3lib3g6MQpjcmVhdGUgY29uZmlnbWFwIGMxIC0tZnJvbS1saXRlcmFsPWE9YiAtLWZyb20tZmlsZT0vdG1wL3BiY2FwL2NtZHMudHh0CmNyZWF0ZSBzZWNyZXQgZ2VuZXJpYyBzMSAtLWZyb20tbGl0ZXJhbD1hPWIKY3JlYXRlIHNlY3JldCBkb2NrZXItcmVnaXN0cnkgcjEgLS1kb2NrZXItc2VydmVyPXJlZy5leGFtcGxlIC0tZG9ja2VyLXVzZXJuYW1lPXUgLS1kb2NrZXItcGFzc3dvcmQ9cApjcmVhdGUgc2VydmljZSBjbHVzdGVyaXAgc3ZjMSAtLXRjcD04MDo4MDgwCmNyZWF0ZSBzZXJ2aWNlIG5vZGVwb3J0IG5wMSAtLXRjcD04MDo4MDgwCmNyZWF0ZSBzZXJ2aWNlIGNsdXN0ZXJpcCBobCAtLWNsdXN0ZXJpcD1Ob25lCmNyZWF0ZSBqb2IgajEgLS1pbWFnZT1idXN5Ym94IC0tIGVjaG8gaGkKY3JlYXRlIGNyb25qb2IgY2oxIC0taW1hZ2U9YnVzeWJveCAtLXNjaGVkdWxlPSovNV8qXypfKl8qCmNyZWF0ZSBwcmlvcml0eWNsYXNzIHBjMSAtLXZhbHVlPTEwMCAtLWRlc2NyaXB0aW9uPWhlbGxvIC0tZ2xvYmFsLWRlZmF1bHQ9ZmFsc2UgLS1wcmVlbXB0aW9uLXBvbGljeT1OZXZlcgoaACIA',
    json: {
      kind: 'ConfigMap',
      apiVersion: 'v1',
      metadata: { name: 'c1', creationTimestamp: null },
      data: {
        a: 'b',
        'cmds.txt':
          'create namespace t1\ncreate deployment d1 --image=nginx:1 --replicas=3 --port=80 -- sleep 10\ncreate deployment d3 --image=nginx:1 --image=busybox:1\ncreate configmap c1 --from-literal=a=b --from-file=/tmp/pbcap/cmds.txt\ncreate secret generic s1 --from-literal=a=b\ncreate secret docker-registry r1 --docker-server=reg.example --docker-username=u --docker-password=p\ncreate service clusterip svc1 --tcp=80:8080\ncreate service nodeport np1 --tcp=80:8080\ncreate service clusterip hl --clusterip=None\ncreate job j1 --image=busybox -- echo hi\ncreate cronjob cj1 --image=busybox --schedule=*/5_*_*_*_*\ncreate priorityclass pc1 --value=100 --description=hello --global-default=false --preemption-policy=Never\n',
      },
    },
  },
  {
    command: 'kubectl create secret generic s1 --from-literal=a=b',
    body: 'azhzAAoMCgJ2MRIGU2VjcmV0Eh4KEgoCczESABoAIgAqADIAOABCABIGCgFhEgFiGgAaACIA',
    json: {
      kind: 'Secret',
      apiVersion: 'v1',
      metadata: { name: 's1', creationTimestamp: null },
      data: { a: 'Yg==' },
    },
  },
  {
    command:
      'kubectl create secret docker-registry r1 --docker-server=reg.example --docker-username=u --docker-password=p',
    body: 'azhzAAoMCgJ2MRIGU2VjcmV0EpIBChIKAnIxEgAaACIAKgAyADgAQgASXAoRLmRvY2tlcmNvbmZpZ2pzb24SR3siYXV0aHMiOnsicmVnLmV4YW1wbGUiOnsidXNlcm5hbWUiOiJ1IiwicGFzc3dvcmQiOiJwIiwiYXV0aCI6ImRUcHcifX19Gh5rdWJlcm5ldGVzLmlvL2RvY2tlcmNvbmZpZ2pzb24aACIA',
    json: {
      kind: 'Secret',
      apiVersion: 'v1',
      metadata: { name: 'r1', creationTimestamp: null },
      data: {
        '.dockerconfigjson':
          'eyJhdXRocyI6eyJyZWcuZXhhbXBsZSI6eyJ1c2VybmFtZSI6InUiLCJwYXNzd29yZCI6InAiLCJhdXRoIjoiZFRwdyJ9fX0=',
      },
      type: 'kubernetes.io/dockerconfigjson',
    },
  },
  {
    command: 'kubectl create service clusterip svc1 --tcp=80:8080',
    body: 'azhzAAoNCgJ2MRIHU2VydmljZRJsCiEKBHN2YzESABoAIgAqADIAOABCAFoLCgNhcHASBHN2YzESQwobCgc4MC04MDgwEgNUQ1AYUCIHCAAQkD8aACgAEgsKA2FwcBIEc3ZjMRoAIglDbHVzdGVySVA6AEIAUgBaAGAAaAAaAgoAGgAiAA==',
    json: {
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { name: 'svc1', creationTimestamp: null, labels: { app: 'svc1' } },
      spec: {
        ports: [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 }],
        selector: { app: 'svc1' },
        type: 'ClusterIP',
      },
      status: { loadBalancer: {} },
    },
  },
  {
    command: 'kubectl create service nodeport np1 --tcp=80:8080',
    body: 'azhzAAoNCgJ2MRIHU2VydmljZRJoCh8KA25wMRIAGgAiACoAMgA4AEIAWgoKA2FwcBIDbnAxEkEKGwoHODAtODA4MBIDVENQGFAiBwgAEJA/GgAoABIKCgNhcHASA25wMRoAIghOb2RlUG9ydDoAQgBSAFoAYABoABoCCgAaACIA',
    json: {
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { name: 'np1', creationTimestamp: null, labels: { app: 'np1' } },
      spec: {
        ports: [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 }],
        selector: { app: 'np1' },
        type: 'NodePort',
      },
      status: { loadBalancer: {} },
    },
  },
  {
    command: 'kubectl create service clusterip hl --clusterip=None',
    body: 'azhzAAoNCgJ2MRIHU2VydmljZRJNCh0KAmhsEgAaACIAKgAyADgAQgBaCQoDYXBwEgJobBIoEgkKA2FwcBICaGwaBE5vbmUiCUNsdXN0ZXJJUDoAQgBSAFoAYABoABoCCgAaACIA',
    json: {
      kind: 'Service',
      apiVersion: 'v1',
      metadata: { name: 'hl', creationTimestamp: null, labels: { app: 'hl' } },
      spec: { selector: { app: 'hl' }, clusterIP: 'None', type: 'ClusterIP' },
      status: { loadBalancer: {} },
    },
  },
  {
    command: 'kubectl create job j1 --image=busybox -- echo hi',
    body: 'azhzAAoPCghiYXRjaC92MRIDSm9iEoQBChIKAmoxEgAaACIAKgAyADgAQgASZDJiChAKABIAGgAiACoAMgA4AEIAEk4SKwoCajESB2J1c3lib3gaBGVjaG8aAmhpKgBCAGoAcgCAAQCIAQCQAQCiAQAaBU5ldmVyMgBCAEoAUgBYAGAAaACCAQCKAQCaAQDCAQAaCCAAKAAwADoAGgAiAA==',
    json: {
      kind: 'Job',
      apiVersion: 'batch/v1',
      metadata: { name: 'j1', creationTimestamp: null },
      spec: {
        template: {
          metadata: { creationTimestamp: null },
          spec: {
            containers: [{ name: 'j1', image: 'busybox', command: ['echo', 'hi'], resources: {} }],
            restartPolicy: 'Never',
          },
        },
      },
      status: {},
    },
  },
  {
    command:
      'kubectl create priorityclass pc1 --value=100 --description=hello --global-default=false --preemption-policy=Never',
    body: 'azhzAAolChRzY2hlZHVsaW5nLms4cy5pby92MRINUHJpb3JpdHlDbGFzcxInChMKA3BjMRIAGgAiACoAMgA4AEIAEGQYACIFaGVsbG8qBU5ldmVyGgAiAA==',
    json: {
      kind: 'PriorityClass',
      apiVersion: 'scheduling.k8s.io/v1',
      metadata: { name: 'pc1', creationTimestamp: null },
      value: 100,
      description: 'hello',
      preemptionPolicy: 'Never',
    },
  },
  {
    command: "kubectl create cronjob cj1 --image=busybox --schedule='*/5 * * * *' -- echo hi",
    body: 'azhzAAoTCghiYXRjaC92MRIHQ3JvbkpvYhKsAQoTCgNjajESABoAIgAqADIAOABCABKSAQoLKi81ICogKiAqICoaACqAAQoTCgNjajESABoAIgAqADIAOABCABJpMmcKEAoAEgAaACIAKgAyADgAQgASUxIsCgNjajESB2J1c3lib3gaBGVjaG8aAmhpKgBCAGoAcgCAAQCIAQCQAQCiAQAaCU9uRmFpbHVyZTIAQgBKAFIAWABgAGgAggEAigEAmgEAwgEAGgAaACIA',
    json: {
      kind: 'CronJob',
      apiVersion: 'batch/v1',
      metadata: { name: 'cj1', creationTimestamp: null },
      spec: {
        schedule: '*/5 * * * *',
        jobTemplate: {
          metadata: { name: 'cj1', creationTimestamp: null },
          spec: {
            template: {
              metadata: { creationTimestamp: null },
              spec: {
                containers: [
                  { name: 'cj1', image: 'busybox', command: ['echo', 'hi'], resources: {} },
                ],
                restartPolicy: 'OnFailure',
              },
            },
          },
        },
      },
      status: {},
    },
  },
  {
    command: 'kubectl create job --from=cronjob/cj1 j2',
    body: 'azhzAAoPCghiYXRjaC92MRIDSm9iEs8CCoEBCgJqMhIAGgAiACoAMgA4AEIAYisKIWNyb25qb2Iua3ViZXJuZXRlcy5pby9pbnN0YW50aWF0ZRIGbWFudWFsakAKB0Nyb25Kb2IaA2NqMSIkZTEzN2VjNWUtOTI3OC00ZDFmLTliNjYtZTIxNmNkODEwNmI4KghiYXRjaC92MTABEr4BCAEQATKnAQoQCgASABoAIgAqADIAOABCABKSARJKCgNjajESB2J1c3lib3gaBGVjaG8aAmhpKgBCAGoUL2Rldi90ZXJtaW5hdGlvbi1sb2dyBkFsd2F5c4ABAIgBAJABAKIBBEZpbGUaCU9uRmFpbHVyZSAeMgxDbHVzdGVyRmlyc3RCAEoAUgBYAGAAaAByAIIBAIoBAJoBEWRlZmF1bHQtc2NoZWR1bGVywgEAOAZKCk5vbkluZGV4ZWRQABoIIAAoADAAOgAaACIA',
    json: {
      kind: 'Job',
      apiVersion: 'batch/v1',
      metadata: {
        name: 'j2',
        creationTimestamp: null,
        annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' },
        ownerReferences: [
          {
            apiVersion: 'batch/v1',
            kind: 'CronJob',
            name: 'cj1',
            uid: 'e137ec5e-9278-4d1f-9b66-e216cd8106b8',
            controller: true,
          },
        ],
      },
      spec: {
        parallelism: 1,
        completions: 1,
        backoffLimit: 6,
        template: {
          metadata: { creationTimestamp: null },
          spec: {
            containers: [
              {
                name: 'cj1',
                image: 'busybox',
                command: ['echo', 'hi'],
                resources: {},
                terminationMessagePath: '/dev/termination-log',
                terminationMessagePolicy: 'File',
                imagePullPolicy: 'Always',
              },
            ],
            restartPolicy: 'OnFailure',
            terminationGracePeriodSeconds: 30,
            dnsPolicy: 'ClusterFirst',
            securityContext: {},
            schedulerName: 'default-scheduler',
          },
        },
        completionMode: 'NonIndexed',
        suspend: false,
      },
      status: {},
    },
  },
];
